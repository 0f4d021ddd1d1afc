/**
 * Attribution: a recommendation click's rec_token is remembered per item for the
 * session, so later events about that item (add_to_cart, purchase) carry it.
 */

/** Remember or apply tokens for this event's items; `tokens` maps item_id -> rec_token. */
export const attribute = (name, items, params, tokens) => {
  if (params.rec_token) {
    if (name == 'select_item') for (const it of items) tokens[it.item_id] = params.rec_token;
    return;
  }
  for (const it of items) {
    const token = tokens[it.item_id];
    if (token) it.rec_token = params.rec_token = token;
  }
};
