/**
 * Event parameters and dataLayer pushes to wire events: GA4 names, items and params
 * cleaned to what the collect endpoint accepts (valid keys, scalars, bounded strings).
 */

/** True for an event name the server accepts (GA4 style, e.g. view_item). */
export const validName = (name) => typeof name == 'string' && /^[a-z][a-z0-9_]{0,39}$/.test(name);
// Valid server keys, less GTM's own bookkeeping (gtm.*, the push's "event").
const KEY = /^(?!gtm|event$)[A-Za-z_][\w.-]{0,63}$/;
// Numbers that sites often push as strings ("19.90").
const NUMERIC = /^(price|quantity|value)$/;

/** The scalar entries of an object with valid keys, at most `max` of them. */
const scalars = (source, max) => {
  const out = {};
  for (const key in source) {
    let value = source[key];
    const type = typeof value;
    if (!KEY.test(key)) continue;
    if (type == 'string') {
      value = NUMERIC.test(key) && value.trim() && isFinite(value) ? +value : value.slice(0, 1024);
    } else if (!(type == 'boolean' || (type == 'number' && isFinite(value)))) continue;
    out[key] = value;
    if (!--max) break;
  }
  return out;
};

/** A GA4 item with a string item_id (falling back to id or item_name), or undefined. */
const item = (raw) => {
  raw = Object(raw);
  const id = [raw.item_id, raw.id, raw.item_name].find((x) => x || x === 0);
  if (id == null) return;
  const out = scalars(raw, 29);
  out.item_id = String(id).slice(0, 100);
  return out;
};

/** [items, params] from GA4-style parameters ({items: [...], currency, value, ...}). */
export const normalize = (params) => {
  params = params || {};
  return [[].concat(params.items || []).map(item).filter(Boolean).slice(0, 200), scalars(params, 50)];
};

/**
 * [name, params] for a dataLayer entry worth collecting, else undefined: gtag('event', ...)
 * calls (pushed as their arguments), and GTM pushes of a named event with a GA4
 * ecommerce object ({event: 'add_to_cart', ecommerce: {items: [...]}}).
 * page_view is skipped: the tracker records page views itself.
 */
export const fromDataLayer = (entry) => {
  entry = Object(entry);
  let name = entry.event;
  let params = entry.ecommerce;
  if (entry[0] == 'event') (name = entry[1]), (params = entry[2]);
  else if (!(params && typeof params == 'object')) return;
  if (validName(name) && name != 'page_view') return [name, params];
};
