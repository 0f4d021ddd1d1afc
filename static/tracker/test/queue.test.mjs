import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';

import { CAP, queueHead, queuePush, queueRemove } from '../src/queue.js';
import { MemoryStorage } from './fakes.mjs';

const event = (i) => ({ event_id: `e${i}`, name: 'view_item' });
const receipt = (i) => ({ event_id: `r${i}`, r: { purposes: { analytics: true } } });
const ids = (entries) => entries.map((e) => e.event_id);

beforeEach(() => {
  globalThis.localStorage = new MemoryStorage();
});

test('entries come out in order, n at a time', () => {
  for (let i = 0; i < 5; i++) queuePush(event(i));
  assert.deepEqual(ids(queueHead(3, [])), ['e0', 'e1', 'e2']);
  queueRemove(['e0', 'e1']);
  assert.deepEqual(ids(queueHead(3, [])), ['e2', 'e3', 'e4']);
});

test('the queue lives in localStorage: a new page reads what the last one left', () => {
  queuePush(event(1));
  const stored = JSON.parse(localStorage.getItem('rs_q'));
  assert.deepEqual(ids(stored.q), ['e1']);
  assert.deepEqual(ids(queueHead(10, [])), ['e1']); // read afresh, no in-memory copy
});

test('a receipt goes alone, and before the events after it', () => {
  queuePush(event(0));
  queuePush(receipt(1));
  queuePush(event(2));
  assert.deepEqual(ids(queueHead(10, [])), ['e0']);
  queueRemove(['e0']);
  assert.deepEqual(ids(queueHead(10, [])), ['r1']);
  queueRemove(['r1']);
  assert.deepEqual(ids(queueHead(10, [])), ['e2']);
});

test('entries in flight are skipped, and nothing passes a receipt in flight', () => {
  for (let i = 0; i < 3; i++) queuePush(event(i));
  assert.deepEqual(ids(queueHead(10, ['e0', 'e1'])), ['e2']);
  localStorage.removeItem('rs_q');
  queuePush(receipt(0));
  queuePush(event(1));
  assert.deepEqual(queueHead(10, ['r0']), []);
});

test(`past ${CAP} entries the oldest events are dropped and counted once`, () => {
  queuePush(receipt(0));
  for (let i = 1; i <= CAP + 5; i++) queuePush(event(i));
  const state = JSON.parse(localStorage.getItem('rs_q'));
  assert.equal(state.q.length, CAP);
  assert.equal(state.q[0].event_id, 'r0'); // a receipt is kept: its events need it
  assert.equal(state.q[1].event_id, 'e7'); // e1..e6 went first
  assert.equal(state.q.at(-1).event_id, `e${CAP + 5}`);
  assert.equal(queueRemove(['r0']), 6); // the count, reported once delivery works...
  assert.equal(queueRemove([]), 0); // ...and then zero
});

test('storage that throws (blocked, full) loses entries but never throws', () => {
  globalThis.localStorage = {
    getItem() {
      throw new Error('SecurityError');
    },
    setItem() {
      throw new Error('QuotaExceededError');
    },
  };
  assert.equal(queuePush(event(1)), 1);
  assert.deepEqual(queueHead(10, []), []);
});
