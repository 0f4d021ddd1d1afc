/**
 * recsite recommendation widgets, for pages Django does not render (and the dismiss control
 * of those it does). No dependencies, ES2017, no build step.
 *
 *   <div data-recsite-widget data-placement="home" data-limit="6" data-item="sku-1"
 *        data-title="You may also like"></div>
 *   <script defer src="https://recs.example/static/recommend/widget.js"
 *           data-site="pk_live_..." data-endpoint="https://recs.example/api/v1"></script>
 *
 * Each container is filled from GET /recommendations for the visitor of the tracker (its
 * rs_aid id; none: a list that reads nothing of the visitor), with the data attributes the
 * tracker reads for impressions and clicks. Item texts are set as text, never as HTML.
 * The x on an item sends not_interested through the tracker and removes the item. The
 * stylesheet widget.css beside the script is added to the page (data-css="" leaves it out,
 * data-css="url" names another).
 */
(function () {
  'use strict';
  var script = document.currentScript || {};
  var options = script.dataset || {};
  var endpoint = (options.endpoint || '/api/v1').replace(/\/$/, '');

  // The widget's stylesheet beside this script, once (data-css="" leaves it out).
  function stylesheet() {
    var href = options.css != null ? options.css
      : (script.src || '').replace(/widget\.js(\?.*)?$/, 'widget.css');
    if (!href) return;
    var link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    var present = [].some.call(document.querySelectorAll('link[rel=stylesheet]'),
      function (other) { return other.href == link.href; });
    if (!present) document.head.appendChild(link);
  }

  function visitor() {
    var found = document.cookie.match('(?:^|; )rs_aid=([^;]*)');
    if (found) return found[1];
    try { return JSON.parse(localStorage.getItem('rs_aid')) || ''; } catch (e) { return ''; }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  // A link goes to an http(s) URL or a path here, never javascript:, data: or //host.
  function safeUrl(url) {
    return /^(?:https?:\/\/|\/(?![\/\\]))/i.test(url || '') ? url : '#';
  }

  function render(container, answer) {
    var placement = answer.placement;
    var headingId = 'recsite-' + placement + '-' + Math.random().toString(36).slice(2, 8);
    var section = el('section', 'recsite-widget');
    section.setAttribute('aria-labelledby', headingId);
    section.dataset.recsitePlacement = placement;
    section.dataset.recToken = answer.rec_token;
    if (answer.variant) section.dataset.recsiteVariant = answer.variant;
    var heading = el('h2', 'recsite-widget__title',
      container.dataset.title || answer.title || 'Recommended for you');
    heading.id = headingId;
    var list = el('ul', 'recsite-widget__list');
    answer.items.forEach(function (item) {
      var li = el('li', 'recsite-widget__item');
      var link = el('a', 'recsite-widget__link');
      link.href = safeUrl(item.url);
      link.dataset.recsiteItem = item.item_id;
      if (/^https?:\/\//i.test(item.image_url || '')) {
        var img = el('img', 'recsite-widget__image');
        img.src = item.image_url; img.alt = ''; img.loading = 'lazy'; img.width = img.height = 160;
        link.appendChild(img);
      }
      link.appendChild(el('span', 'recsite-widget__name', item.title || item.item_id));
      if (item.price != null) {
        link.appendChild(el('span', 'recsite-widget__price',
          Number(item.price).toFixed(2) + ' ' + (item.currency || '')));
      }
      link.appendChild(el('span', 'recsite-widget__reason', item.reason.text));
      var dismiss = el('button', 'recsite-widget__dismiss', '\u00d7');
      dismiss.type = 'button';
      dismiss.dataset.recsiteDismiss = item.item_id;
      dismiss.setAttribute('aria-label', 'Not interested in ' + (item.title || item.item_id));
      dismiss.title = 'Not interested';
      li.appendChild(link);
      li.appendChild(dismiss);
      list.appendChild(li);
    });
    section.appendChild(heading);
    section.appendChild(list);
    container.textContent = '';
    if (answer.items.length) container.appendChild(section);
  }

  function fill(container) {
    if (container.dataset.recsiteFilled) return;
    container.dataset.recsiteFilled = '1';
    var data = container.dataset;
    var params = new URLSearchParams({ site: data.site || options.site || '',
      placement: data.placement || 'home' });
    var anon = visitor();
    if (anon) params.set('anon_id', anon); else params.set('personalized', '0');
    if (data.limit) params.set('limit', data.limit);
    if (data.item) params.set('item', data.item);
    var path = data.item && data.similar != null
      ? '/items/' + encodeURIComponent(data.item) + '/similar' : '/recommendations';
    if (path != '/recommendations') params.delete('item');
    return fetch(endpoint + path + '?' + params, { credentials: 'omit' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) { if (answer) render(container, answer); })
      .catch(function () { /* no list: the page stays as it is */ });
  }

  function scan() {
    var containers = document.querySelectorAll('[data-recsite-widget]');
    if (containers.length) stylesheet();
    containers.forEach(fill);
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('[data-recsite-dismiss]');
    if (!button) return;
    var widget = button.closest('[data-recsite-placement]');
    var item = button.closest('li') || button;
    if (window.recsite) {
      window.recsite('event', 'not_interested', {
        items: [{ item_id: button.dataset.recsiteDismiss }],
        item_list_id: widget && widget.dataset.recsitePlacement,
        rec_token: widget && widget.dataset.recToken,
      });
    }
    var list = item.parentNode;
    item.remove();
    if (list && !list.children.length && widget) widget.remove();
  });

  if (document.readyState == 'loading') document.addEventListener('DOMContentLoaded', scan);
  else scan();
  window.recsiteWidgets = { refresh: function () {
    document.querySelectorAll('[data-recsite-widget]').forEach(function (c) {
      delete c.dataset.recsiteFilled;
    });
    scan();
  } };
})();
