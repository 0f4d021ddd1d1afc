/**
 * Recommendation widgets, marked up as [data-recsite-placement][data-rec-token] holding
 * [data-recsite-item] elements: an impression (view_item_list) once a widget has been
 * at least half visible for a second, and a click on an item as select_item.
 */

const WIDGET = '[data-recsite-placement]';
const ITEM = '[data-recsite-item]';
const VISIBLE_MS = 1000;

const itemsOf = (widget) => [...widget.querySelectorAll(ITEM)];
const listParams = (widget, items, token) => ({
  items,
  item_list_id: widget.dataset.recsitePlacement,
  rec_token: token || widget.dataset.recToken,
});

/** Watch every widget on the page, including those added later. */
export const watchWidgets = (track) => {
  const doc = document;
  // A widget's pending impression timer; the entry stays once its impression is sent.
  const timers = new WeakMap();
  const observer = new IntersectionObserver((entries) => {
    for (const { target, intersectionRatio } of entries) {
      if (intersectionRatio >= 0.5) {
        if (!timers.has(target)) {
          timers.set(target, setTimeout(() => {
            observer.unobserve(target);
            track('view_item_list', listParams(target, itemsOf(target).map((el, index) => ({
              item_id: el.dataset.recsiteItem, index }))));
          }, VISIBLE_MS));
        }
      } else {
        clearTimeout(timers.get(target));
        timers.delete(target);
      }
    }
  }, { threshold: 0.5 });
  // Observing a widget twice is a no-op; one already reported is not observed again.
  const scan = () => doc.querySelectorAll(WIDGET).forEach((widget) => timers.has(widget) || observer.observe(widget));
  new MutationObserver(scan).observe(doc.documentElement, { childList: true, subtree: true });
  scan();
  doc.addEventListener('click', (event) => {
    const el = event.target.closest && event.target.closest(ITEM);
    const widget = el && el.closest(WIDGET);
    if (widget) {
      track('select_item', listParams(widget, [{ item_id: el.dataset.recsiteItem,
        index: itemsOf(widget).indexOf(el) }], el.dataset.recToken));
    }
  }, true);
};
