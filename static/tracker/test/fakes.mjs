// A minimal browser for unit tests under Node: localStorage, cookies, the tracker's
// script tag, fetch and sendBeacon that record requests. Just what the sources touch.

export class MemoryStorage {
  constructor() {
    this.map = new Map();
  }
  getItem(key) {
    return this.map.has(key) ? this.map.get(key) : null;
  }
  setItem(key, value) {
    this.map.set(key, String(value));
  }
  removeItem(key) {
    this.map.delete(key);
  }
  keys() {
    return [...this.map.keys()].sort();
  }
}

/** document.cookie semantics for name=value;...;max-age=N (0 deletes). */
class CookieJar {
  constructor() {
    this.map = new Map();
  }
  get cookie() {
    return [...this.map].map(([name, value]) => `${name}=${value}`).join('; ');
  }
  set cookie(text) {
    const [pair, ...attributes] = text.split(';');
    const [name, value] = pair.split('=');
    if (attributes.some((a) => a.trim() == 'max-age=0')) this.map.delete(name);
    else this.map.set(name, value);
  }
  names() {
    return [...this.map.keys()].sort();
  }
}

/**
 * Install the fake browser on globalThis; returns handles to inspect and drive it.
 * `answer(request)` gives each fetch's {status, headers} (default 202); null means offline.
 */
export const installBrowser = ({ answer = () => ({ status: 202 }), dataset = {} } = {}) => {
  const listeners = new Map();
  const on = (type, fn) => listeners.set(type, [...(listeners.get(type) || []), fn]);
  const jar = new CookieJar();
  const requests = [];
  const storage = new MemoryStorage();
  const doc = {
    currentScript: {
      src: 'https://recs.test/static/tracker/dist/tracker.min.js',
      dataset: { site: 'pk_test', endpoint: 'https://recs.test/api/v1', flushMs: '5', ...dataset },
    },
    referrer: '',
    title: 'Desk lamp',
    visibilityState: 'visible',
    hasFocus: () => true,
    documentElement: { scrollHeight: 2000 },
    querySelectorAll: () => [],
    addEventListener: on,
    get cookie() {
      return jar.cookie;
    },
    set cookie(text) {
      jar.cookie = text;
    },
  };
  const nav = {
    language: 'en-GB',
    onLine: true,
    sendBeacon(url, body) {
      requests.push({ url, body: JSON.parse(body), beacon: true });
      return true;
    },
  };
  Object.assign(globalThis, {
    window: globalThis,
    document: doc,
    localStorage: storage,
    location: { href: 'https://shop.test/p/1', protocol: 'https:' },
    history: { pushState() {} },
    innerWidth: 1280,
    innerHeight: 800,
    scrollY: 0,
    addEventListener: on,
    IntersectionObserver: class {
      observe() {}
      unobserve() {}
    },
    MutationObserver: class {
      observe() {}
    },
    fetch: async (url, init) => {
      const request = { url, body: JSON.parse(init.body), keepalive: init.keepalive };
      requests.push(request);
      const reply = answer(request);
      if (!reply) throw new TypeError('Failed to fetch');
      const headers = new Map(Object.entries(reply.headers || {}));
      return { status: reply.status, ok: reply.status < 300, headers: { get: (k) => headers.get(k) ?? null } };
    },
  });
  Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
  delete globalThis.recsite;
  delete globalThis.dataLayer;
  return {
    requests,
    storage,
    cookies: jar,
    navigator: nav,
    fire: (type, event = {}) => (listeners.get(type) || []).forEach((fn) => fn(event)),
  };
};

let loaded = 0;
/** A fresh instance of the tracker module (the query string defeats the module cache). */
export const loadTracker = () => import(`../src/tracker.js?instance=${++loaded}`);

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait until check() is true (polling every 5 ms), failing after `ms`. */
export const until = async (check, ms = 2000) => {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(5)) if (check()) return;
  throw new Error(`condition not met within ${ms} ms: ${check}`);
};
