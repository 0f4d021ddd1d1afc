/**
 * The recsite tracker: one script tag with data-site (the public key) and data-endpoint
 * (the API base, e.g. https://recs.example/api/v1; by default /api/v1 on the script's host).
 *
 *   recsite('event', name, params)   a GA4-style event; params may hold items
 *   recsite('identify', userId)      the site's user id, on later events
 *   recsite('reset')                 on logout: a new visitor id, no user id
 *   recsite('consent', choice)       {analytics, personalization, version, source, ts, stored}
 *
 * Nothing is collected, stored or sent before a choice grants analytics: calls made
 * before it wait in memory and are dropped on refusal. Refusal or withdrawal clears
 * everything the tracker stored.
 */

import { attribute } from './attribution.js';
import { backoff, retryable } from './backoff.js';
import { uuid } from './ids.js';
import { fromDataLayer, normalize, validName } from './mapping.js';
import { pageInfo, watchPage } from './page.js';
import { queueHead, queuePush, queueRemove } from './queue.js';
import { get, readCookie, set, writeCookie } from './store.js';
import { watchWidgets } from './widgets.js';

const SESSION_GAP_MS = 30 * 60 * 1000;
const VISITOR_COOKIE_AGE_S = 395 * 24 * 3600;
const REQUEST_EVENTS = 25;
const WAITING_MAX = 100;

const win = window;
const nav = navigator;
const script = document.currentScript || {};
const options = script.dataset || {};
const site = options.site;
const endpoint = options.endpoint || new URL(script.src).origin + '/api/v1';
const batchSize = +options.batch || 10;
const flushMs = +options.flushMs || 1000;

let granted; // undefined until a choice is known, then true or false
let choice; // the granting choice, sent again as a receipt for a new visitor id
let waiting = [];
let visitor;
let zone;
let started;
let timer;
let busy = []; // the ids of the entries in flight; [1] while backing off
let attempt = 0;

const now = () => new Date().toISOString();
const storedVisitor = () => readCookie('rs_aid') || get('rs_aid');

/** Keep the visitor id in a first-party cookie and in localStorage; no id forgets it. */
const keepVisitor = (id) => {
  set('rs_aid', id);
  writeCookie('rs_aid', id, id ? VISITOR_COOKIE_AGE_S : 0);
  return (visitor = id);
};

/** A queue entry holding the consent receipt of choice c for the current visitor. */
const receipt = (c) => ({
  event_id: uuid(),
  r: {
    site,
    anon_id: visitor || 'a_' + uuid(),
    user_id: get('rs_u'),
    purposes: { analytics: !!c.analytics, personalization: !!c.personalization },
    banner_version: c.version,
    source: c.source || 'api',
    ts: c.ts,
  },
});

const track = (name, params) => {
  if (!granted || !validName(name)) return;
  const [items, clean] = normalize(params);
  const at = Date.now();
  let session = get('rs_s');
  // A new session after 30 minutes without an event; r maps item ids to rec_tokens.
  if (!session || at - session.t > SESSION_GAP_MS) session = { i: 's_' + uuid(), r: {} };
  session.t = at;
  attribute(name, items, clean, session.r);
  set('rs_s', session);
  const event = {
    event_id: uuid(),
    name,
    ts: now(),
    anon_id: visitor,
    user_id: get('rs_u'),
    session_id: session.i,
    page: pageInfo(),
    context: {
      device: innerWidth < 768 ? 'mobile' : 'desktop',
      viewport: innerWidth + 'x' + innerHeight,
      locale: nav.language,
    },
    params: clean,
  };
  if (items.length) event.items = items;
  if (queuePush(event) >= batchSize) flush();
  else timer = timer || setTimeout(flush, flushMs);
};

const send = (entries, beacon) => {
  // The time zone is looked up here, off the page load: Intl's first use costs tens of ms.
  if (!entries[0].r) for (const e of entries) e.context.tz = zone = zone || Intl.DateTimeFormat().resolvedOptions().timeZone;
  const body = JSON.stringify(entries[0].r || { site, sent_at: now(), events: entries });
  const url = endpoint + (entries[0].r ? '/consent' : '/collect');
  // A string body goes as text/plain: a simple request with no CORS preflight.
  return beacon ? nav.sendBeacon(url, body) : fetch(url, { method: 'POST', body, keepalive: true });
};

/** Drop delivered entries, reporting once how many the cap dropped before. */
const delivered = (ids) => {
  const dropped = queueRemove(ids);
  if (dropped) track('tracker_dropped', { dropped });
};

/** After a request: end what was delivered (or never can be), or back off and retry. */
const settle = (ids, done, retryAfter) => {
  busy = [];
  if (!granted) return;
  if (done) {
    attempt = 0;
    delivered(ids);
    flush();
  } else {
    busy = [1]; // backing off: nothing is sent until the timer (or the browser going online)
    timer = setTimeout(() => {
      busy = [];
      flush();
    }, backoff(attempt++, retryAfter));
  }
};

/** Send what is queued: one request at a time, or all of it by beacon when the page goes. */
function flush(leaving) {
  if (!granted || !nav.onLine) return;
  if (leaving === true) {
    // While backing off the server is failing, and a beacon's answer cannot be read:
    // the queue stays for the next page. After a receipt, stop: its events wait too.
    if (busy[0] == 1) return;
    for (let entries; (entries = queueHead(REQUEST_EVENTS, busy)).length && send(entries, 1); ) {
      delivered(entries.map((e) => e.event_id));
      if (entries[0].r) break;
    }
    return;
  }
  if (busy[0]) return;
  clearTimeout(timer);
  timer = 0;
  const entries = queueHead(REQUEST_EVENTS, busy);
  if (!entries.length) return;
  const ids = (busy = entries.map((e) => e.event_id));
  // 2xx, and answers that cannot improve (400, 401, 403, 413, 422, ...), end the entries.
  send(entries).then(
    (answer) => settle(ids, !retryable(answer.status), answer.headers.get('Retry-After')),
    () => settle(ids),
  );
}

const start = () => {
  started = 1;
  watchPage(track, () => flush(true));
  waiting.forEach((args) => recsite.apply(0, args));
  waiting = [];
  const dataLayer = (win.dataLayer = win.dataLayer || []);
  const take = (entry) => {
    const found = fromDataLayer(entry);
    if (found) track(found[0], found[1]);
  };
  dataLayer.forEach(take);
  const push = dataLayer.push;
  dataLayer.push = function () {
    const length = push.apply(this, arguments);
    [].forEach.call(arguments, take);
    return length;
  };
  watchWidgets(track);
  addEventListener('online', () => {
    clearTimeout(timer);
    busy = [];
    attempt = 0;
    flush();
  });
};

const consent = (c) => {
  c = c || {};
  const known = visitor || storedVisitor();
  if (c.analytics) {
    keepVisitor(known || 'a_' + uuid());
    choice = c;
    granted = true;
    // A new choice, or a visitor id the server has not seen with this choice.
    if (!c.stored || !known) queuePush(receipt(c));
    if (!started) start();
    // Sent when the browser is idle: the page's own loading comes first.
    (win.requestIdleCallback || setTimeout)(flush);
  } else {
    // Withdrawal names the visitor it withdraws for; a first refusal uses a one-off id.
    visitor = known;
    if (!c.stored) send([receipt(c)]).catch(Boolean);
    granted = false;
    waiting = [];
    keepVisitor();
    ['rs_q', 'rs_s', 'rs_u'].forEach((key) => set(key));
  }
};

function recsite(command, arg) {
  if (command == 'consent') consent(arg);
  else if (!granted) {
    if (granted == null && waiting.length < WAITING_MAX) waiting.push(arguments);
  } else if (command == 'event') track(arg, arguments[2]);
  else if (command == 'identify') set('rs_u', '' + arg);
  else if (command == 'reset') {
    set('rs_u');
    set('rs_s');
    keepVisitor('a_' + uuid());
    queuePush(receipt(choice));
  }
}

const stub = win.recsite;
win.recsite = recsite;
((stub && stub.q) || []).forEach((args) => recsite.apply(0, args));
