/**
 * The recsite consent banner: necessary (always on), analytics and personalization.
 * Accept all and Reject all side by side with equal weight, Customize for each purpose;
 * reopened by any element with data-recsite-consent-open; any element with
 * data-recsite-consent-withdraw withdraws every purpose in one click. The choice is remembered in
 * the rs_consent cookie (necessary storage) and handed to the tracker at once, which
 * posts the receipt; Google Consent Mode v2 hears it when gtag exists. A Global Privacy
 * Control or Do-Not-Track signal counts as a refusal until the visitor opts in here.
 *
 * Texts: English defaults, replaced by data-* attributes of this script tag (data-title,
 * data-accept, ...) or by the JSON in <script type="application/json" id="recsite-consent-config">.
 */

const win = window;
const doc = document;
const nav = navigator;
const COOKIE = 'rs_consent';
const MAX_AGE_S = 180 * 24 * 3600;
const PURPOSES = ['analytics', 'personalization'];
const TEXTS = {
  title: 'Your privacy choices',
  text: 'With your consent we measure how this site is used (analytics) and recommend products from what you view (personalization). Necessary storage only keeps this choice. You can change it at any time.',
  reject: 'Reject all',
  accept: 'Accept all',
  customize: 'Customize',
  save: 'Save choices',
  purposes: 'What you allow',
  necessary: 'Necessary',
  analytics: 'Analytics',
  personalization: 'Personalization',
};

const script = doc.currentScript || {};
const attrs = script.dataset || {};
let config = {};
try {
  config = JSON.parse(doc.getElementById('recsite-consent-config').textContent);
} catch (e) {
  // No config element: defaults and data attributes.
}
const version = String(attrs.version || config.version || '1');
const text = (key) => attrs[key] || config[key] || TEXTS[key];

let dialog;
let options;
let opener;

const saved = () => {
  const found = doc.cookie.match(/(?:^|; )rs_consent=([^;]*)/);
  try {
    return JSON.parse(decodeURIComponent(found[1]));
  } catch (e) {
    return undefined;
  }
};

/** Hand a choice ({v, a, p, s, t}) to the tracker and to Google Consent Mode. */
const apply = (choice, stored) => {
  const recsite = (win.recsite = win.recsite || function () {
    (recsite.q = recsite.q || []).push(arguments);
  });
  recsite('consent', { analytics: !!choice.a, personalization: !!choice.p, version: choice.v,
    source: choice.s, ts: choice.t, stored });
  if (typeof win.gtag == 'function') {
    const state = (on) => (on ? 'granted' : 'denied');
    win.gtag('consent', 'update', { analytics_storage: state(choice.a), ad_storage: state(choice.p),
      ad_user_data: state(choice.p), ad_personalization: state(choice.p) });
  }
};

const choose = (analytics, personalization, source) => {
  const choice = { v: version, a: +analytics, p: +personalization, s: source || 'banner', t: new Date().toISOString() };
  doc.cookie = COOKIE + '=' + encodeURIComponent(JSON.stringify(choice)) + ';path=/;max-age=' + MAX_AGE_S +
    ';samesite=lax' + (location.protocol == 'https:' ? ';secure' : '');
  apply(choice);
};

const el = (tag, attributes, ...children) => {
  const node = doc.createElement(tag);
  for (const name in attributes) node.setAttribute(name, attributes[name]);
  node.append(...children);
  return node;
};

const box = (name, extra) => el('label', {}, el('input', Object.assign({ type: 'checkbox', name }, extra)), ' ', text(name));
const button = (action, extra) => el('button', Object.assign({ type: 'button', 'data-action': action }, extra), text(action));

const build = () => {
  options = el('fieldset', { id: 'rs-co', hidden: '' }, el('legend', {}, text('purposes')),
    box('necessary', { checked: '', disabled: '' }),
    ...PURPOSES.map((name) => box(name)), button('save'));
  dialog = el('div', { class: 'rs-consent', role: 'dialog', 'aria-labelledby': 'rs-ct', 'aria-describedby': 'rs-cd',
    tabindex: '-1', hidden: '' },
    el('h2', { id: 'rs-ct' }, text('title')), el('p', { id: 'rs-cd' }, text('text')),
    el('div', { class: 'rs-row' }, button('reject'), button('accept'),
      button('customize', { 'aria-expanded': 'false', 'aria-controls': 'rs-co' })),
    options);
  dialog.addEventListener('click', (event) => {
    const action = event.target.getAttribute('data-action');
    const checked = PURPOSES.map((name) => options.querySelector('[name=' + name + ']').checked);
    if (action == 'customize') {
      options.hidden = false;
      event.target.setAttribute('aria-expanded', 'true');
      options.querySelector('[name=analytics]').focus();
      return;
    }
    if (!action) return;
    if (action == 'accept') choose(1, 1);
    else if (action == 'reject') choose(0, 0);
    else choose(checked[0], checked[1]);
    close();
  });
  dialog.addEventListener('keydown', (event) => {
    if (event.key == 'Escape' && saved()) close();
  });
  doc.body.append(dialog);
};

const open = () => {
  if (!dialog) build();
  const current = saved() || {};
  PURPOSES.forEach((name, i) => (options.querySelector('[name=' + name + ']').checked = !!current[name[0]]));
  opener = doc.activeElement;
  dialog.hidden = false;
  dialog.focus();
};

const close = () => {
  dialog.hidden = true;
  if (opener && opener.focus) opener.focus();
};

// One click withdraws, as one click gave: an element with data-recsite-consent-withdraw
// refuses every purpose at once (the receipt is posted); data-recsite-consent-open reopens.
doc.addEventListener('click', (event) => {
  const at = (name) => event.target.closest && event.target.closest('[data-recsite-consent-' + name + ']');
  if (at('withdraw')) {
    event.preventDefault();
    choose(0, 0);
    if (dialog && !dialog.hidden) close();
  } else if (at('open')) {
    event.preventDefault();
    open();
  }
});

const current = saved();
const signal = nav.globalPrivacyControl || nav.doNotTrack == '1' || win.doNotTrack == '1';
// A refusal that came from the signal lasts while the signal does; then the banner asks.
if (current && current.v == version && (current.s != 'gpc' || signal)) apply(current, true);
else if (signal) choose(0, 0, 'gpc');
else if (doc.body) open();
else doc.addEventListener('DOMContentLoaded', open);
