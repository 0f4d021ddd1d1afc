import assert from 'node:assert/strict';
import { test } from 'node:test';

import { attribute } from '../src/attribution.js';
import { fromDataLayer, normalize, validName } from '../src/mapping.js';

const ga4AddToCart = {
  event: 'add_to_cart',
  'gtm.uniqueEventId': 12,
  ecommerce: {
    currency: 'EUR',
    value: '39.80',
    items: [
      { item_id: 'SKU_1', item_name: 'Lamp', price: '19.90', quantity: '2', item_category: 'Lights', item_list_id: 'home' },
      { item_name: 'Shade without id', price: 5 },
      { price: 1 },
      'not an item',
    ],
  },
};

test('a GA4 ecommerce push maps to its event with the ecommerce params', () => {
  const [name, params] = fromDataLayer(ga4AddToCart);
  assert.equal(name, 'add_to_cart');
  const [items, clean] = normalize(params);
  assert.deepEqual(clean, { currency: 'EUR', value: 39.8 });
  assert.deepEqual(items, [
    { item_id: 'SKU_1', item_name: 'Lamp', price: 19.9, quantity: 2, item_category: 'Lights', item_list_id: 'home' },
    { item_id: 'Shade without id', item_name: 'Shade without id', price: 5 },
  ]);
});

test('gtag("event", ...) calls arrive as their arguments object', () => {
  const args = (function () {
    return arguments;
  })('event', 'purchase', { transaction_id: 'T1', value: 25, currency: 'USD', event_callback() {}, items: [{ item_id: 7 }] });
  const [name, params] = fromDataLayer(args);
  assert.equal(name, 'purchase');
  const [items, clean] = normalize(params);
  assert.deepEqual(clean, { transaction_id: 'T1', value: 25, currency: 'USD' }); // no function
  assert.deepEqual(items, [{ item_id: '7' }]);
});

test('GTM bookkeeping, clears, page views, consent calls and bad names are ignored', () => {
  for (const entry of [
    { event: 'gtm.js', 'gtm.start': 1 },
    { event: 'gtm.dom' },
    { ecommerce: null },
    { ecommerce: { items: [] } }, // no event name
    { event: 'custom_click' }, // no ecommerce object: the site's own business
    { event: 'page_view', ecommerce: {} }, // the tracker records page views itself
    ['consent', 'update', { analytics_storage: 'granted' }],
    ['event', 'Bad Name', {}],
    null,
    'text',
  ]) assert.equal(fromDataLayer(entry), undefined, JSON.stringify(entry));
});

test('params keep scalars with valid keys, bounded', () => {
  const [items, clean] = normalize({
    ok: 'yes', n: 3, flag: false, nothing: null, nested: { a: 1 }, list: [1], 'bad key': 1, nan: NaN,
    long: 'x'.repeat(5000), price: 'free',
  });
  assert.deepEqual(items, []);
  assert.deepEqual(Object.keys(clean), ['ok', 'n', 'flag', 'long', 'price']);
  assert.equal(clean.long.length, 1024);
  assert.equal(clean.price, 'free'); // not a number: left as it is, the server decides
  assert.equal(Object.keys(normalize(Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`k${i}`, i])))[1]).length, 50);
  assert.deepEqual(normalize(undefined), [[], {}]);
});

test('event names follow GA4 style', () => {
  assert.ok(validName('view_item'));
  assert.ok(validName('a'.repeat(40)));
  for (const bad of ['a'.repeat(41), 'View', '1st', 'gtm.js', '', undefined, null, 5]) assert.ok(!validName(bad), bad);
});

test('a recommendation click remembers its token per item; later events carry it', () => {
  const tokens = {};
  attribute('select_item', [{ item_id: 'sku-7' }], { rec_token: 'tok-1' }, tokens);
  assert.deepEqual(tokens, { 'sku-7': 'tok-1' });
  const items = [{ item_id: 'sku-1' }, { item_id: 'sku-7' }];
  const params = {};
  attribute('purchase', items, params, tokens);
  assert.deepEqual(items, [{ item_id: 'sku-1' }, { item_id: 'sku-7', rec_token: 'tok-1' }]);
  assert.equal(params.rec_token, 'tok-1');
  // An impression carries its own token and changes nothing remembered.
  attribute('view_item_list', [{ item_id: 'sku-1' }], { rec_token: 'tok-2' }, tokens);
  assert.deepEqual(tokens, { 'sku-7': 'tok-1' });
});
