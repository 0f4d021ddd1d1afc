/**
 * Automatic page events: page_view (single-page-app history navigation too), engaged
 * time (visible and focused, sent as user_engagement when the page is hidden or left)
 * and scroll depth milestones (25, 50, 75, 100 per page).
 */

// The page events are about: history navigation moves to the next one only after
// the last events of the one before (its engaged time) are recorded.
let url = location.href;
let referrer = document.referrer;

/** The page fields of an event, within the server's length limits. */
export const pageInfo = () => ({
  url: url.slice(0, 2048),
  referrer: referrer.slice(0, 2048),
  title: document.title,
});

/** Start the automatic events; `hidden` is called when the page is hidden or left. */
export const watchPage = (track, hidden) => {
  const doc = document;
  let activeSince = 0;
  let engagedMs = 0;
  let depth = 0;

  // Called on every change of visibility or focus: bank the time of the active stretch.
  const tick = () => {
    const now = Date.now();
    if (activeSince) engagedMs += now - activeSince;
    activeSince = doc.visibilityState == 'visible' && doc.hasFocus() ? now : 0;
  };
  const engagement = () => {
    tick();
    if (engagedMs) track('user_engagement', { engaged_ms: engagedMs });
    engagedMs = 0;
  };
  const view = () => {
    depth = 0;
    tick();
    track('page_view');
  };
  const navigated = () => {
    if (location.href == url) return;
    engagement();
    referrer = url;
    url = location.href;
    view();
  };
  const leave = () => {
    engagement();
    hidden();
  };

  const pushState = history.pushState;
  history.pushState = function () {
    pushState.apply(this, arguments);
    navigated();
  };
  addEventListener('popstate', navigated);
  addEventListener('focus', tick);
  addEventListener('blur', tick);
  doc.addEventListener('visibilitychange', () => (doc.visibilityState == 'hidden' ? leave() : tick()));
  addEventListener('scroll', () => {
    const reached = Math.min(100, Math.floor(((scrollY + innerHeight) / doc.documentElement.scrollHeight) * 4 + 0.02) * 25);
    if (reached > depth) track('scroll', { scroll_pct: (depth = reached) });
  }, { passive: true });
  view();
};
