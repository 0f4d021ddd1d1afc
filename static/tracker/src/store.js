/** First-party storage: JSON values in localStorage, and cookies; never throws. */

/** The parsed JSON value under key, or undefined (missing, unreadable or storage blocked). */
export const get = (key) => {
  try {
    return JSON.parse(localStorage.getItem(key));
  } catch (e) {
    // Blocked or unreadable: as if nothing were stored.
  }
};

/** Store a JSON value; undefined removes the key. */
export const set = (key, value) => {
  try {
    value === undefined ? localStorage.removeItem(key) : localStorage.setItem(key, JSON.stringify(value));
  } catch (e) {
    // Storage full or blocked: the tracker keeps working in memory for this page.
  }
};

/** A first-party cookie's value (ids only: nothing to decode), or undefined. */
export const readCookie = (name) => {
  const found = document.cookie.match('(?:^|; )' + name + '=([^;]*)');
  return found && found[1];
};

/** Set a first-party cookie for the whole site; maxAge 0 deletes it. */
export const writeCookie = (name, value, maxAge) => {
  document.cookie = name + '=' + value + ';path=/;max-age=' + maxAge +
    ';samesite=lax' + (location.protocol == 'https:' ? ';secure' : '');
};
