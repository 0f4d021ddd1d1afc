/** When to try a request again: jittered exponential backoff that honours Retry-After. */

const MAX_DELAY_MS = 60000;

/** True when a failed request may succeed later: no answer, 408, 429 or 5xx. */
export const retryable = (status) => !status || status == 408 || status == 429 || status >= 500;

/**
 * Milliseconds to wait before attempt number `attempt` + 1: half to all of
 * min(1 s x 2^attempt, 60 s), and never less than Retry-After (seconds or an HTTP date).
 */
export const backoff = (attempt, retryAfter, random = Math.random) => {
  const ceiling = Math.min(MAX_DELAY_MS, 1000 * 2 ** attempt);
  // null and '' count as 0 seconds; an unreadable value as NaN, then 0.
  const asked = isNaN(retryAfter) ? Date.parse(retryAfter) - Date.now() : retryAfter * 1000;
  return Math.max(ceiling / 2 + (random() * ceiling) / 2, asked || 0);
};
