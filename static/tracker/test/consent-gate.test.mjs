// The tracker as a whole in a fake browser: nothing before consent, receipts before
// events, refusal and withdrawal leave nothing behind, delivery retries as it should.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { installBrowser, loadTracker, sleep, until } from './fakes.mjs';

const GRANT = { analytics: true, personalization: false, version: 'v1', source: 'banner', ts: '2026-11-24T10:00:00.000Z' };
const paths = (requests) => requests.map((r) => new URL(r.url).pathname.split('/').pop());
const eventNames = (requests) => requests.filter((r) => r.body.events).flatMap((r) => r.body.events.map((e) => e.name));

test('before a choice: nothing sent, nothing stored; calls wait in memory', async () => {
  const browser = installBrowser();
  await loadTracker();
  recsite('identify', 'user-9');
  recsite('event', 'view_item', { items: [{ item_id: 'sku-1' }] });
  await sleep(30);
  assert.deepEqual(browser.requests, []);
  assert.deepEqual(browser.storage.keys(), []);
  assert.deepEqual(browser.cookies.names(), []);

  recsite('consent', GRANT);
  await until(() => eventNames(browser.requests).includes('view_item'));
  assert.deepEqual(paths(browser.requests), ['consent', 'collect']); // the receipt first
  const receipt = browser.requests[0].body;
  assert.deepEqual(receipt.purposes, { analytics: true, personalization: false });
  assert.equal(receipt.banner_version, 'v1');
  assert.equal(receipt.source, 'banner');
  assert.equal(receipt.ts, GRANT.ts);
  const batch = browser.requests[1].body;
  assert.equal(batch.site, 'pk_test');
  const [pageView, viewItem] = batch.events;
  assert.equal(pageView.name, 'page_view');
  assert.equal(pageView.user_id, null); // recorded before the calls that waited
  assert.equal(viewItem.user_id, 'user-9'); // identify waited with the rest
  assert.equal(viewItem.anon_id, receipt.anon_id);
  assert.match(viewItem.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(viewItem.items, [{ item_id: 'sku-1' }]);
  assert.deepEqual(viewItem.page, { url: 'https://shop.test/p/1', referrer: '', title: 'Desk lamp' });
  assert.ok(browser.requests[1].keepalive);
  assert.deepEqual(browser.cookies.names(), ['rs_aid']);
  assert.ok(browser.storage.keys().includes('rs_aid'));
});

test('a remembered choice sends no new receipt', async () => {
  const browser = installBrowser();
  browser.storage.setItem('rs_aid', '"a_known"');
  await loadTracker();
  recsite('consent', { ...GRANT, stored: true });
  await until(() => browser.requests.length == 1);
  await sleep(20);
  assert.deepEqual(paths(browser.requests), ['collect']);
  assert.equal(browser.requests[0].body.events[0].anon_id, 'a_known');
});

test('refusal: one receipt with a one-off id; later calls are dropped; nothing stored', async () => {
  const browser = installBrowser();
  await loadTracker();
  recsite('event', 'view_item');
  recsite('consent', { analytics: false, personalization: false, source: 'gpc' });
  recsite('event', 'add_to_cart');
  await sleep(30);
  assert.deepEqual(paths(browser.requests), ['consent']);
  assert.equal(browser.requests[0].body.source, 'gpc');
  assert.match(browser.requests[0].body.anon_id, /^a_/);
  assert.deepEqual(browser.storage.keys(), []);
  assert.deepEqual(browser.cookies.names(), []);
});

test('withdrawal names the visitor, then clears storage and cookie', async () => {
  const browser = installBrowser();
  await loadTracker();
  recsite('consent', GRANT);
  recsite('identify', 'user-9');
  await until(() => browser.requests.length == 2);
  const anonId = browser.requests[0].body.anon_id;
  recsite('consent', { analytics: false, version: 'v1', source: 'banner' });
  await until(() => browser.requests.length == 3);
  const withdrawal = browser.requests[2].body;
  assert.equal(withdrawal.anon_id, anonId);
  assert.equal(withdrawal.user_id, 'user-9');
  assert.deepEqual(withdrawal.purposes, { analytics: false, personalization: false });
  assert.deepEqual(browser.storage.keys(), []);
  assert.deepEqual(browser.cookies.names(), []);
});

test('reset gives a new visitor id with its own receipt, and forgets the user', async () => {
  const browser = installBrowser({ dataset: { batch: '1' } });
  await loadTracker();
  recsite('consent', GRANT);
  recsite('identify', 'user-9');
  await until(() => eventNames(browser.requests).includes('page_view'));
  const before = browser.requests[0].body.anon_id;
  recsite('reset');
  recsite('event', 'view_item');
  await until(() => eventNames(browser.requests).includes('view_item'));
  const receipts = browser.requests.filter((r) => r.body.purposes);
  assert.equal(receipts.length, 2);
  assert.notEqual(receipts[1].body.anon_id, before);
  const viewItem = browser.requests.at(-1).body.events.at(-1);
  assert.equal(viewItem.anon_id, receipts[1].body.anon_id);
  assert.equal(viewItem.user_id, null);
});

test('calls made before the script loaded are taken from the queue stub', async () => {
  const browser = installBrowser();
  globalThis.recsite = function () {
    (recsite.q = recsite.q || []).push(arguments);
  };
  recsite('event', 'search', { search_term: 'lamp' });
  recsite('consent', GRANT);
  globalThis.dataLayer = [{ event: 'view_item', ecommerce: { items: [{ item_id: 'sku-2' }] } }];
  await loadTracker();
  await until(() => eventNames(browser.requests).length == 3);
  assert.deepEqual(eventNames(browser.requests), ['page_view', 'search', 'view_item']);
  dataLayer.push({ event: 'add_to_cart', ecommerce: { items: [{ item_id: 'sku-2', price: 3 }] } });
  await until(() => eventNames(browser.requests).includes('add_to_cart'));
});

test('5xx is retried after Retry-After with the same event ids; 400 is not retried', async () => {
  let answers = [{ status: 201 }, { status: 503, headers: { 'Retry-After': '0' } }, { status: 202 }];
  const browser = installBrowser({ answer: () => answers.shift() || { status: 202 } });
  await loadTracker();
  recsite('consent', GRANT);
  await until(() => browser.requests.length == 3, 3000); // receipt, 503, retry (0.5-1 s later)
  const [, failed, retried] = browser.requests;
  assert.deepEqual(retried.body.events.map((e) => e.event_id), failed.body.events.map((e) => e.event_id));
  assert.deepEqual(JSON.parse(browser.storage.getItem('rs_q')).q, []);

  answers = [{ status: 400 }];
  recsite('event', 'view_item');
  await until(() => browser.requests.length == 4);
  await sleep(1200);
  assert.equal(browser.requests.length, 4);
  assert.deepEqual(JSON.parse(browser.storage.getItem('rs_q')).q, []);
});

test('offline: nothing is attempted until the browser is back online', async () => {
  const browser = installBrowser();
  await loadTracker();
  browser.navigator.onLine = false;
  recsite('consent', GRANT);
  recsite('event', 'view_item');
  await sleep(30);
  assert.deepEqual(browser.requests, []);
  assert.equal(JSON.parse(browser.storage.getItem('rs_q')).q.length, 3);
  browser.navigator.onLine = true;
  browser.fire('online');
  await until(() => eventNames(browser.requests).includes('view_item'));
  assert.deepEqual(paths(browser.requests), ['consent', 'collect']);
});

test('a hidden page hands its queue to sendBeacon, engaged time included', async () => {
  const browser = installBrowser({ dataset: { flushMs: '1500' } });
  browser.storage.setItem('rs_aid', '"a_known"');
  await loadTracker();
  recsite('consent', { ...GRANT, stored: true });
  await until(() => browser.requests.length == 1); // the page_view
  await sleep(20); // the answer is in: the next event waits for the 1.5 s timer
  recsite('event', 'add_to_cart');
  await sleep(15);
  document.visibilityState = 'hidden';
  browser.fire('visibilitychange');
  const beacon = browser.requests.at(-1);
  assert.ok(beacon.beacon);
  const [cart, engagement] = beacon.body.events;
  assert.equal(cart.name, 'add_to_cart');
  assert.equal(engagement.name, 'user_engagement');
  assert.ok(engagement.params.engaged_ms >= 10);
  assert.deepEqual(JSON.parse(browser.storage.getItem('rs_q')).q, []);
});

test('429 waits at least Retry-After before the retry', async () => {
  const answers = [{ status: 429, headers: { 'Retry-After': '1' } }];
  const browser = installBrowser({ answer: () => answers.shift() || { status: 202 } });
  browser.storage.setItem('rs_aid', '"a_known"');
  await loadTracker();
  recsite('consent', { ...GRANT, stored: true });
  await until(() => browser.requests.length == 1);
  const throttledAt = Date.now();
  await until(() => browser.requests.length == 2, 3000);
  assert.ok(Date.now() - throttledAt >= 950, `retried after ${Date.now() - throttledAt} ms`);
});

test('events the cap dropped are reported once, when delivery works again', async () => {
  const browser = installBrowser();
  browser.storage.setItem('rs_aid', '"a_known"');
  browser.storage.setItem('rs_q', JSON.stringify({ q: [], d: 7 }));
  await loadTracker();
  recsite('consent', { ...GRANT, stored: true });
  await until(() => eventNames(browser.requests).includes('tracker_dropped'));
  await sleep(30);
  const reports = browser.requests.flatMap((r) => r.body.events).filter((e) => e.name == 'tracker_dropped');
  assert.deepEqual(reports.map((e) => e.params), [{ dropped: 7 }]);
  assert.equal(JSON.parse(browser.storage.getItem('rs_q')).d, 0);
});

test('a session ends after 30 minutes without an event', async () => {
  const browser = installBrowser({ dataset: { batch: '1' } });
  browser.storage.setItem('rs_aid', '"a_known"');
  const minutesAgo = (m) => JSON.stringify({ i: 's_old', r: { 'sku-1': 'tok' }, t: Date.now() - m * 60000 });
  browser.storage.setItem('rs_s', minutesAgo(29));
  await loadTracker();
  recsite('consent', { ...GRANT, stored: true });
  recsite('event', 'add_to_cart', { items: [{ item_id: 'sku-1' }] });
  browser.storage.setItem('rs_s', minutesAgo(31));
  recsite('event', 'add_to_cart', { items: [{ item_id: 'sku-1' }] });
  await until(() => eventNames(browser.requests).filter((n) => n == 'add_to_cart').length == 2);
  const [first, second] = browser.requests.flatMap((r) => r.body.events).filter((e) => e.name == 'add_to_cart');
  assert.equal(first.session_id, 's_old');
  assert.equal(first.params.rec_token, 'tok'); // the session's attribution
  assert.match(second.session_id, /^s_[0-9a-f-]{36}$/);
  assert.equal(second.params.rec_token, undefined); // tokens end with their session
});
