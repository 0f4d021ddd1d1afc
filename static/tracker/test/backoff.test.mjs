import assert from 'node:assert/strict';
import { test } from 'node:test';

import { backoff, retryable } from '../src/backoff.js';

test('never retried: answers that cannot improve', () => {
  for (const status of [400, 401, 403, 404, 413, 415, 422]) assert.equal(retryable(status), false, status);
});

test('retried: no answer (offline), timeouts, throttling and server errors', () => {
  for (const status of [undefined, 0, 408, 429, 500, 502, 503, 504]) assert.equal(retryable(status), true, status);
});

test('the delay doubles per attempt between half and all of the ceiling', () => {
  const low = (attempt) => backoff(attempt, null, () => 0);
  const high = (attempt) => backoff(attempt, null, () => 1);
  assert.deepEqual([0, 1, 2, 3].map(low), [500, 1000, 2000, 4000]);
  assert.deepEqual([0, 1, 2, 3].map(high), [1000, 2000, 4000, 8000]);
  assert.equal(high(20), 60000); // capped at a minute
  assert.equal(low(20), 30000);
});

test('the jitter spreads clients out', () => {
  const delays = new Set(Array.from({ length: 50 }, () => backoff(3)));
  assert.ok(delays.size > 40);
  for (const delay of delays) assert.ok(delay >= 4000 && delay <= 8000, delay);
});

test('Retry-After in seconds or as an HTTP date is a floor', () => {
  assert.equal(backoff(0, '30', () => 0), 30000);
  assert.equal(backoff(5, '1', () => 1), 32000); // our own delay is longer already
  const inAMinute = new Date(Date.now() + 60000).toUTCString();
  const delay = backoff(0, inAMinute, () => 0);
  assert.ok(delay > 58000 && delay <= 60000, delay);
  assert.equal(backoff(0, 'garbage', () => 0), 500);
  assert.equal(backoff(0, '', () => 0), 500);
});
