import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';

import { installBrowser } from './fakes.mjs';

// A clock the tests move by hand: engaged time is measured with Date.now.
const realNow = Date.now;
let clock = 0;
beforeEach(() => {
  clock = 1_700_000_000_000;
  Date.now = () => clock;
});
afterEach(() => {
  Date.now = realNow;
});

let loaded = 0;
/** Start the page events of a fresh page.js (it reads location when it loads). */
const watched = async () => {
  const { watchPage } = await import(`../src/page.js?instance=${++loaded}`);
  const tracked = [];
  const state = { hidden: 0 };
  watchPage((name, params) => tracked.push([name, params]), () => state.hidden++);
  return { tracked, state, engagements: () => tracked.filter(([name]) => name == 'user_engagement') };
};

const hide = (browser) => {
  document.visibilityState = 'hidden';
  browser.fire('visibilitychange');
};

test('engaged time counts while the page is visible and focused, sent when it is hidden', async () => {
  const browser = installBrowser();
  const { tracked, state, engagements } = await watched();
  assert.deepEqual(tracked[0], ['page_view', undefined]);
  clock += 4_000;
  hide(browser);

  assert.equal(state.hidden, 1);
  assert.deepEqual(engagements(), [['user_engagement', { engaged_ms: 4_000 }]]);
});

test('a tab that never had focus sends no user_engagement', async () => {
  const browser = installBrowser();
  document.hasFocus = () => false; // e.g. opened in the background
  const { state, engagements } = await watched();
  clock += 4_000;
  hide(browser);

  assert.equal(state.hidden, 1);
  assert.deepEqual(engagements(), []);
});

test('only the focused stretches count', async () => {
  const browser = installBrowser();
  let focused = false;
  document.hasFocus = () => focused;
  const { engagements } = await watched();
  clock += 5_000; // not focused
  focused = true;
  browser.fire('focus');
  clock += 1_500;
  focused = false;
  browser.fire('blur');
  clock += 7_000; // not focused again
  focused = true;
  browser.fire('focus');
  clock += 500;
  hide(browser);

  assert.deepEqual(engagements(), [['user_engagement', { engaged_ms: 2_000 }]]);
});
