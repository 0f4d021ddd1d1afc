/**
 * The persistent queue of entries to deliver: events, and consent receipts that must
 * reach the server before the events after them. Kept in localStorage so it survives
 * reloads and navigation; capped, dropping the oldest events first and counting them.
 * Every call reads storage afresh: other tabs of the site share the queue.
 */

import { get, set } from './store.js';

export const CAP = 1000;
const KEY = 'rs_q';

const read = () => get(KEY) || { q: [], d: 0 };
const write = (state) => set(KEY, state);

/** Append an entry; returns the queue's length. */
export const queuePush = (entry) => {
  const state = read();
  state.q.push(entry);
  // Past the cap the oldest events go; receipts stay, or later events would be refused.
  for (let i = 0; state.q.length > CAP && i < state.q.length; ) {
    if (state.q[i].r) i++;
    else state.q.splice(i, 1), state.d++;
  }
  write(state);
  return state.q.length;
};

/**
 * The next request's entries, skipping those in flight (an array of ids): a receipt alone, or up to n
 * events before the next receipt; nothing while a receipt is in flight.
 */
export const queueHead = (n, inFlight) => {
  const out = [];
  for (const entry of read().q) {
    if (inFlight.includes(entry.event_id)) {
      if (entry.r) return [];
    } else if (entry.r) {
      return out.length ? out : [entry];
    } else if (out.push(entry) == n) break;
  }
  return out;
};

/** Remove delivered entries; returns how many events the cap dropped before (then zero). */
export const queueRemove = (ids) => {
  const state = read();
  const dropped = state.d;
  state.q = state.q.filter((entry) => !ids.includes(entry.event_id));
  state.d = 0;
  write(state);
  return dropped;
};
