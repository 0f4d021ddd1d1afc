// A server outage (503) seen by the tracker: nothing is given up, not even when the page
// is left. python -m devtools.faults checks the same in Chromium against a stopped database.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { installBrowser, loadTracker, sleep, until } from './fakes.mjs';

const GRANT = { analytics: true, personalization: false, version: 'v1', source: 'banner', stored: true };
const ids = (requests) => requests.flatMap((r) => r.body.events.map((e) => e.event_id));
const queued = (browser) => JSON.parse(browser.storage.getItem('rs_q')).q.map((e) => e.event_id);

test('a page left while the server fails keeps its queue; the next page delivers it once', async () => {
  let down = true;
  const browser = installBrowser({
    answer: () => (down ? { status: 503, headers: { 'Retry-After': '1' } } : { status: 202 }),
  });
  browser.storage.setItem('rs_aid', '"a_known"');
  await loadTracker();
  recsite('consent', GRANT);
  await until(() => browser.requests.length == 1); // the page_view, answered 503
  recsite('event', 'add_to_cart');
  await sleep(20);
  document.visibilityState = 'hidden';
  browser.fire('visibilitychange'); // left while backing off: no beacon into the outage
  assert.ok(!browser.requests.some((r) => r.beacon));
  const kept = queued(browser);
  assert.equal(kept.length, 3); // page_view, add_to_cart, user_engagement

  down = false; // the next page, once the server is back
  document.visibilityState = 'visible';
  const before = browser.requests.length;
  await loadTracker();
  recsite('consent', GRANT);
  await until(() => queued(browser).length == 0);
  const delivered = ids(browser.requests.slice(before));
  assert.deepEqual(kept.filter((id) => !delivered.includes(id)), []);
  assert.equal(new Set(delivered).size, delivered.length); // each sent once
});
