"""Serving: the recommendations of one subject for one placement, with a reason for each
item and a signed rec_token.

candidates (the active model's components, blended by the placement's strategy)
  -> business rules (dismissed, purchased, recently seen, available, categories, price)
  -> request filters, boosters, context rules, rotation -> diversity (MMR or a category cap)
  -> the cold-start chain when too few are left (segment popular -> trending -> popular).
"""

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
from django.core.cache import cache
from django.utils import timezone

from recommend import selectors
from recommend.algorithms.knn import neighbour_scores, neighbour_sums, query_weights_of
from recommend.algorithms.sparse import top_n_sparse_row
from recommend.caching import answer_cache
from recommend.catalog import Catalog, CatalogItem, catalog_get
from recommend.conf import recommend_settings
from recommend.experiments import assign
from recommend.models import Placement
from recommend.query import Booster, Predicate, QueryError, boosters_parse, filter_parse
from recommend.ranking import category_capped, mmr, rotated
from recommend.serving import LoadedModel, active_model
from recommend.tokens import RecToken, token_sign
from tracking.models import Site

logger = logging.getLogger(__name__)

COMPONENTS = ("knn", "content", "popularity", "session")
STRATEGY_WEIGHTS = {"knn": {"knn": 1.0}, "content": {"content": 1.0},
                    "session": {"session": 1.0}, "popularity": {"popularity": 1.0}}
FALLBACKS = ("segment_popular", "trending", "popular")
HISTORY_LAST = 5  # items of the session ("because you viewed")
BLEND_KEEP = 60  # blended candidates kept per request (more when rules filter many out)
CONTENT_LAST = 5  # the latest items that make a visitor's content profile
# Catalogs up to this size are blended as dense arrays (a score per item): numpy over a few
# thousand floats costs less than gathering, sorting and merging sparse candidates.
DENSE_ITEMS = 20_000


# --- what a placement does --------------------------------------------------------------


@dataclass(frozen=True)
class ContextRule:
    """Boost (factor) or keep only (filter) matching items when the context matches."""

    devices: frozenset[str]
    countries: frozenset[str]
    hours: tuple[int, int] | None
    matches: Predicate
    factor: float | None  # None: a filter

    def applies(self, context: "Context") -> bool:
        if self.devices and context.device not in self.devices:
            return False
        if self.countries and context.country not in self.countries:
            return False
        if self.hours is not None:
            start, end = self.hours
            hour = context.hour
            inside = start <= hour <= end if start <= end else (hour >= start or hour <= end)
            if not inside:
                return False
        return True


@dataclass(frozen=True)
class PlacementConfig:
    """A placement's settings, with an experiment variant's overrides applied."""

    name: str
    title: str = ""
    strategy: str = Placement.Strategy.HYBRID
    weights: Mapping[str, float] = field(default_factory=dict)
    limit: int = 6
    exclude_purchased: bool = True
    exclude_seen_days: int | None = None
    only_available: bool = True
    include_categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    price_min: float | None = None
    price_max: float | None = None
    diversity: str = Placement.Diversity.NONE
    diversity_lambda: float = 0.3
    category_cap: int = 2
    fallback: tuple[str, ...] = FALLBACKS
    context_rules: tuple[ContextRule, ...] = ()
    rotation_rate: float = 0.0
    rotation_hours: float = 24.0

    @classmethod
    def of(cls, placement: Placement | None, name: str) -> "PlacementConfig":
        if placement is None:
            return cls(name=name)
        return cls(
            name=name, title=placement.title, strategy=placement.strategy,
            weights=dict(placement.weights or {}), limit=placement.limit,
            exclude_purchased=placement.exclude_purchased,
            exclude_seen_days=placement.exclude_seen_days,
            only_available=placement.only_available,
            include_categories=frozenset(placement.include_categories or ()),
            exclude_categories=frozenset(placement.exclude_categories or ()),
            price_min=placement.price_min, price_max=placement.price_max,
            diversity=placement.diversity, diversity_lambda=placement.diversity_lambda,
            category_cap=placement.category_cap,
            fallback=tuple(f for f in placement.fallback or () if f in FALLBACKS),
            context_rules=context_rules_parse(placement.context_rules or []),
            rotation_rate=placement.rotation_rate, rotation_hours=placement.rotation_hours)

    def overridden(self, overrides: Mapping[str, Any]) -> "PlacementConfig":
        """This config with a variant's overrides (unknown keys are ignored)."""
        allowed = {"strategy", "weights", "limit", "exclude_purchased", "exclude_seen_days",
                   "diversity", "diversity_lambda", "category_cap", "rotation_rate",
                   "rotation_hours", "price_min", "price_max"}
        changes = {key: value for key, value in overrides.items() if key in allowed}
        for key in ("include_categories", "exclude_categories"):
            if key in overrides:
                changes[key] = frozenset(overrides[key])
        if "fallback" in overrides:
            changes["fallback"] = tuple(f for f in overrides["fallback"] if f in FALLBACKS)
        return replace(self, **changes)


def context_rules_parse(rules: Any) -> tuple[ContextRule, ...]:
    """Context rules from a placement's JSON (QueryError when one is wrong)."""
    if not isinstance(rules, list):
        raise QueryError("context_rules", "must be a list of rules")
    parsed = []
    for index, rule in enumerate(rules):
        where = f"context_rules[{index}]"
        if not isinstance(rule, dict) or "when" not in rule or \
                ("boost" in rule) == ("filter" in rule):
            raise QueryError(where, 'must be {"when": {...}, "boost": <filter>, "factor": x} '
                             'or {"when": {...}, "filter": <filter>}')
        when = rule["when"]
        if not isinstance(when, dict) or set(when) - {"device", "country", "hours"}:
            raise QueryError(f"{where}.when", "may name device, country and hours only")
        hours = when.get("hours")
        if hours is not None and (not isinstance(hours, list) or len(hours) != 2 or not all(
                isinstance(h, int) and 0 <= h <= 23 for h in hours)):
            raise QueryError(f"{where}.when.hours", "must be [first hour, last hour], 0..23")
        devices, countries = when.get("device", []), when.get("country", [])
        if not isinstance(devices, list) or not isinstance(countries, list):
            raise QueryError(f"{where}.when", "device and country must be lists")
        if "boost" in rule:
            booster = boosters_parse({"if": rule["boost"], "factor": rule.get("factor")},
                                     field=where)[0]
            matches, factor = booster.matches, booster.factor
        else:
            matches, factor = filter_parse(rule["filter"], field=f"{where}.filter"), None
        parsed.append(ContextRule(
            devices=frozenset(str(d) for d in devices),
            countries=frozenset(str(c).upper() for c in countries),
            hours=tuple(hours) if hours else None, matches=matches, factor=factor))
    return tuple(parsed)


# --- the request ----------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """Where and when the visitor is: from the request, else their latest event."""

    device: str = ""
    country: str = ""
    hour: int = 0


@dataclass(frozen=True)
class RecRequest:
    placement: str
    limit: int | None = None
    item: str | None = None  # the item on the page (product pages, similar items)
    filter: Predicate | None = None
    boosters: tuple[Booster, ...] = ()
    diversity: float | None = None  # 0..1, MMR on top of the placement's own diversity
    rotation_rate: float | None = None
    rotation_hours: float | None = None
    after: RecToken | None = None  # "next items" after this list
    device: str | None = None
    country: str | None = None
    hour: int | None = None
    similar: bool = False  # items similar to ``item`` (personalized when history exists)


@dataclass(frozen=True)
class Reason:
    kind: str  # because_viewed | similar_item | category_affinity | segment_popular |
    #            trending | popular | for_you
    text: str
    item_id: str | None = None
    segment: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class RecItem:
    item: CatalogItem | None
    item_id: str
    score: float
    reason: Reason


@dataclass(frozen=True)
class RecList:
    placement: str
    title: str
    items: list[RecItem]
    token: str
    variant: str
    experiment: int | None
    model_version: int | None
    more: bool  # whether "next items" may give more


# --- history --------------------------------------------------------------------------


@dataclass
class History:
    """What serving needs of a subject's events."""

    weighted: list[tuple[str, float]] = field(default_factory=list)  # oldest first
    sequence: list[str] = field(default_factory=list)  # viewed items, oldest first
    purchased: set[str] = field(default_factory=set)
    dismissed: set[str] = field(default_factory=set)
    seen_at: dict[str, datetime] = field(default_factory=dict)  # latest weighted event
    impressions: dict[str, list[datetime]] = field(default_factory=dict)
    clicks: dict[str, datetime] = field(default_factory=dict)

    def unclicked(self, since: datetime) -> dict[str, int]:
        """Per item: impressions since ``since`` not followed by a click on it."""
        counts: dict[str, int] = {}
        for item, times in self.impressions.items():
            clicked = self.clicks.get(item)
            n = sum(1 for at in times if at >= since and (clicked is None or at > clicked))
            if n:
                counts[item] = n
        return counts


def history_read(*, site_id: int, subjects: list[str], consent_subjects: list[str] | None
                 ) -> History | None:
    """The subjects' history, or None when their consent does not allow personalization
    (``consent_subjects`` None: not asked)."""
    weights = recommend_settings.EVENT_WEIGHTS
    since = timezone.now() - timedelta(days=recommend_settings.TRAIN_WINDOW_DAYS)
    found = selectors.subject_serving_rows(site_id=site_id, subjects=subjects, since=since,
                                           names=weights, consent_subjects=consent_subjects)
    if consent_subjects is not None and not found.consented:
        return None
    history = History(dismissed=set(found.dismissed))
    for item_id, name, ts in reversed(found.events):  # oldest first
        if name == "not_interested":
            history.dismissed.add(item_id)
        elif name == "view_item_list":
            history.impressions.setdefault(item_id, []).append(ts)
        elif name == "select_item":
            history.clicks[item_id] = ts
        if name in weights:
            history.weighted.append((item_id, weights[name]))
            history.sequence.append(item_id)
            history.seen_at[item_id] = ts
            if name == "purchase":
                history.purchased.add(item_id)
    return history


# --- in-process memos -------------------------------------------------------------------

_placements: dict[tuple[int, str], tuple[int, float, PlacementConfig, Any]] = {}
MEMO_SECONDS = 30.0


def placement_setup(*, site_id: int, name: str, generation: int
                    ) -> tuple[PlacementConfig, Any]:
    """The placement's config and its running experiment (memoized per generation)."""
    key = (site_id, name)
    held = _placements.get(key)
    if held is not None and held[0] == generation and time.monotonic() - held[1] < MEMO_SECONDS:
        return held[2], held[3]
    placement = selectors.placement_find(site_id=site_id, name=name)
    try:
        config = PlacementConfig.of(placement, name)
    except QueryError:
        logger.exception("placement %s of site %s has invalid context rules; ignored",
                         name, site_id)
        config = replace(PlacementConfig.of(None, name), title=placement.title if placement
                         else "")
    experiment = None if placement is None else _experiment_setup(placement)
    if len(_placements) > 10_000:
        _placements.clear()
    _placements[key] = (generation, time.monotonic(), config, experiment)
    return config, experiment


@dataclass(frozen=True)
class ExperimentSetup:
    pk: int
    slug: str
    weights: tuple[tuple[str, float], ...]
    overrides: Mapping[str, Mapping[str, Any]]
    holdouts: frozenset[str]


def _experiment_setup(placement: Placement) -> ExperimentSetup | None:
    experiment = selectors.experiment_running(placement=placement)
    if experiment is None:
        return None
    variants = list(experiment.variants.all())
    if not variants:
        return None
    bandit = experiment.bandit_weights if experiment.allocation == "thompson" else {}
    weights = tuple((v.name, float(bandit.get(v.name, v.weight))) for v in variants)
    if sum(w for _, w in weights) <= 0:
        return None
    return ExperimentSetup(
        pk=experiment.pk, slug=experiment.slug, weights=weights,
        overrides={v.name: dict(v.overrides or {}) for v in variants},
        holdouts=frozenset(v.name for v in variants if v.is_holdout))


def memos_clear() -> None:
    _placements.clear()


# --- lists for cold start ---------------------------------------------------------------


def ranked_list(*, site_id: int, kind: str, segment: int | None = None
                ) -> list[tuple[str, float]]:
    """Trending, popular or segment-popular items of a site (cached for a while)."""
    key = f"recommend:list:{site_id}:{kind}:{segment or ''}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    names = list(recommend_settings.EVENT_WEIGHTS)
    window = timedelta(days=recommend_settings.TRENDING_WINDOW_DAYS)
    if kind == "trending":
        found = selectors.items_trending(
            site_id=site_id, window=window, names=names,
            half_life_hours=recommend_settings.TRENDING_HALF_LIFE_HOURS)
    else:
        latest = selectors.site_latest_event_time(site_id=site_id)
        span = timedelta(days=recommend_settings.TRAIN_WINDOW_DAYS)
        found = selectors.items_popular(site_id=site_id, names=names,
                                        since=None if latest is None else latest - span,
                                        subjects_of_segment=segment)
    cache.set(key, found, recommend_settings.LISTS_CACHE_SECONDS)
    return found


# --- the service ------------------------------------------------------------------------


@dataclass(slots=True)
class _Candidate:
    score: float
    component: str  # the component (or list) that contributed most
    ref: str | None = None  # the segment name of a segment-popular item


def recommendation_list(*, site: Site, subject: str, request: RecRequest,
                        generation: int, personalized: bool = True,
                        history_subjects: list[str] | None = None,
                        consent_subjects: list[str] | None = None) -> RecList:
    """The items to show this subject on this placement now, with reasons and a token.

    ``personalized`` False serves lists that read nothing of the subject; so does a
    subject none of whose ``consent_subjects`` allows personalization (None: the caller
    checked). ``history_subjects`` are the subject hashes whose events count (the
    subject's own by default).
    """
    config, experiment = placement_setup(site_id=site.pk, name=request.placement,
                                         generation=generation)
    variant, holdout = "", False
    if experiment is not None:
        variant = assign(subject, experiment.slug, experiment.weights)
        config = config.overridden(experiment.overrides.get(variant, {}))
        holdout = variant in experiment.holdouts
    limit = min(request.limit or config.limit, recommend_settings.MAX_LIMIT)
    earlier = request.after.shown if request.after is not None else ()
    if len(earlier) >= recommend_settings.MAX_PAGED_ITEMS:
        limit = 0
    limit = min(limit, recommend_settings.MAX_PAGED_ITEMS - len(earlier))
    catalog = catalog_get(site_id=site.pk, generation=generation)
    loaded = active_model(site_id=site.pk, generation=generation)
    history = History()
    if personalized and not holdout:
        found = history_read(site_id=site.pk, subjects=history_subjects or [subject],
                             consent_subjects=consent_subjects)
        history, personalized = (found, True) if found is not None else (history, False)
    context = _context(site_id=site.pk, subject=subject, request=request, config=config,
                       personalized=personalized)

    ranking = _Ranking(site=site, subject=subject, config=config, request=request,
                       catalog=catalog, history=history, context=context,
                       excluded=_excluded(config, history, request, earlier),
                       personalized=personalized and not holdout)
    if limit > 0:
        if holdout:
            ranking.add_list("popular", ranked_list(site_id=site.pk, kind="popular"))
        else:
            ranking.add_model(loaded)
        chosen = ranking.choose(limit)
        for kind in config.fallback:
            if len(chosen) >= limit:
                break
            ranking.add_fallback(kind)
            chosen = ranking.choose(limit)
    else:
        chosen = []
    items = [RecItem(item=catalog.get(item_id), item_id=item_id, score=round(score, 6),
                     reason=ranking.reason(item_id, loaded)) for item_id, score in chosen]
    token = token_sign(RecToken(
        placement=request.placement, subject=subject, items=tuple(i.item_id for i in items),
        variant=variant, experiment=experiment.pk if experiment else None,
        model_version=loaded.version_id if loaded else None, earlier=earlier))
    more = bool(items) and len(earlier) + len(items) < recommend_settings.MAX_PAGED_ITEMS
    return RecList(placement=request.placement, title=config.title, items=items, token=token,
                   variant=variant, experiment=experiment.pk if experiment else None,
                   model_version=loaded.version_id if loaded else None, more=more)


def _excluded(config: PlacementConfig, history: History, request: RecRequest,
              earlier: tuple[str, ...]) -> set[str]:
    excluded = set(history.dismissed) | set(earlier)
    if request.item:
        excluded.add(request.item)
    if config.exclude_purchased:
        excluded |= history.purchased
    if config.exclude_seen_days is None:
        excluded |= set(history.seen_at)
    elif config.exclude_seen_days > 0:
        since = timezone.now() - timedelta(days=config.exclude_seen_days)
        excluded |= {item for item, at in history.seen_at.items() if at >= since}
    return excluded


def _context(*, site_id: int, subject: str, request: RecRequest, config: PlacementConfig,
             personalized: bool) -> Context:
    device, country, hour = request.device, request.country, request.hour
    if config.context_rules and personalized and (device is None or country is None):
        latest = selectors.subject_latest_context(site_id=site_id, subject=subject)
        device = device if device is not None else str(latest.get("device", ""))
        if country is None:
            country = str(latest.get("country") or "")
            if not country and isinstance(latest.get("locale"), str) and \
                    "-" in latest["locale"]:
                country = latest["locale"].rsplit("-", 1)[1]
    if hour is None:
        hour = datetime.now(UTC).hour
    return Context(device=device or "", country=(country or "").upper(), hour=hour)


class _Ranking:
    """Candidates gathered from the model and the lists, and the choice among them."""

    def __init__(self, *, site: Site, subject: str, config: PlacementConfig,
                 request: RecRequest, catalog: Catalog, history: History, context: Context,
                 excluded: set[str], personalized: bool) -> None:
        self.site, self.subject, self.config, self.request = site, subject, config, request
        self.catalog, self.history, self.context = catalog, history, context
        self.excluded, self.personalized = excluded, personalized
        self.candidates: dict[str, _Candidate] = {}
        self.recent: list[str] = []
        self.knn: Any = None
        self.item_index: Mapping[str, int] = {}
        self.item_ids: list[str] = []
        self.loaded: LoadedModel | None = None
        self._viewed: list[tuple[str, dict[int, float], float]] | None = None

    # -- gathering --

    def add_model(self, loaded: LoadedModel | None) -> None:
        strategy = self.config.strategy
        if strategy == Placement.Strategy.TRENDING:
            self.add_list("trending", ranked_list(site_id=self.site.pk, kind="trending"))
            return
        if loaded is None:
            return
        model = loaded.model
        self.loaded = loaded
        self.knn = model.models_.get("knn")
        self.item_index, self.item_ids = loaded.item_index, loaded.item_ids
        weights = dict(STRATEGY_WEIGHTS.get(strategy) or self.config.weights
                       or model.weights_for(self.request.placement))
        recent = _distinct_last(self.history.sequence, HISTORY_LAST)
        if self.request.item:
            recent = [*[i for i in recent if i != self.request.item], self.request.item]
        self.recent = recent
        known = [(loaded.item_index[i], w) for i, w in self.history.weighted
                 if i in loaded.item_index]
        recent_idx = [loaded.item_index[i] for i in recent if i in loaded.item_index]
        if self.request.similar:
            self._add_similar(loaded, known)
            return
        if not known and not recent_idx and strategy != Placement.Strategy.POPULARITY:
            return  # cold start: the fallback chain fills the list
        scorer = _ComponentScorer(
            model, knn=self.knn, known=known, recent=recent_idx,
            banned=[loaded.item_index[i] for i in self.excluded if i in loaded.item_index],
            want=min(200, max(60, 4 * (self.limit_hint() + len(self.excluded)))))
        names = [name for name, weight in weights.items()
                 if weight > 0 and name in COMPONENTS and scorer.serves(name)]
        if model.n_items_ <= DENSE_ITEMS:
            self._blend_dense(scorer, sorted(names), weights, loaded)
        else:
            self._blend({name: scorer.sparse(name) for name in names}, weights, loaded)

    def _add_similar(self, loaded: LoadedModel, known: list[tuple[int, float]]) -> None:
        item = self.request.item
        if item not in loaded.item_index:
            return
        ids, scores = loaded.model.similar_items([loaded.item_index[item]], n=200)
        keep = ids[0] >= 0
        found = {"similar": (ids[0][keep], scores[0][keep])}
        blend_weights = {"similar": 1.0}
        if self.personalized and known and "knn" in loaded.model.models_:
            items, item_weights = _summed(known)
            found["knn"] = _best(*loaded.model.models_["knn"]._scores_one(items, item_weights),
                                 200, None)
            blend_weights["knn"] = 0.5
        self._blend(found, blend_weights, loaded)

    def _blend(self, found: Mapping[str, tuple[np.ndarray, np.ndarray]],
               weights: Mapping[str, float], loaded: LoadedModel) -> None:
        """Each component's scores scaled by its best and weighted (as Hybrid's ``blend``),
        summed per item; the component with the largest share names the reason."""
        names = sorted(name for name, (ids, _) in found.items() if ids.size)
        if not names:
            return
        parts = []
        for name in names:
            scores = found[name][1]
            best = float(scores[0]) if scores[0] > 0 else 1.0
            parts.append(scores.astype(np.float64) * (float(weights.get(name, 0.0)) / best))
        all_ids = np.concatenate([found[name][0] for name in names])
        all_parts = np.concatenate(parts)
        which = np.concatenate([np.full(found[name][0].size, n) for n, name in
                                enumerate(names)])
        unique, inverse = np.unique(all_ids, return_inverse=True)
        totals = np.bincount(inverse, weights=all_parts)
        order = np.lexsort((-all_parts, inverse))  # per item, its largest share first
        first = order[np.r_[0, np.flatnonzero(np.diff(inverse[order])) + 1]]
        leaders = which[first]
        keep = self._blend_keep()
        if unique.size > keep:  # only the best can reach a list
            best = np.argpartition(-totals, keep - 1)[:keep]
            unique, totals, leaders = unique[best], totals[best], leaders[best]
        self._candidates_add(unique, totals, leaders, names, loaded)

    def _blend_dense(self, scorer: "_ComponentScorer", names: list[str],
                     weights: Mapping[str, float], loaded: LoadedModel) -> None:
        """``_blend`` on dense scores: a row per component (``names``, sorted), a column
        per item, 0 where an item is not a candidate."""
        if not names:
            return
        scores = np.zeros((len(names), loaded.model.n_items_))
        for row, name in zip(scores, names, strict=True):
            scorer.dense(name, row)
        best = scores.max(axis=1)
        given = best > 0
        if not given.any():
            return
        scores *= (np.array([float(weights.get(name, 0.0)) for name in names])
                   / np.where(given, best, 1.0))[:, np.newaxis]
        totals = scores.sum(axis=0)  # row by row, in the names' order: as _blend adds up
        ids = np.flatnonzero(totals > 0)
        keep = self._blend_keep()
        if ids.size > keep:  # only the best can reach a list
            ids = ids[np.argpartition(-totals[ids], keep - 1)[:keep]]
        # argmax keeps the first of equal shares: the first name, as _blend's stable sort
        leaders = scores[:, ids].argmax(axis=0)
        self._candidates_add(ids, totals[ids], leaders, names, loaded)

    def _blend_keep(self) -> int:
        return BLEND_KEEP if not self._filtering() else 5 * BLEND_KEEP

    def _candidates_add(self, indices: np.ndarray, totals: np.ndarray, leaders: np.ndarray,
                        names: list[str], loaded: LoadedModel) -> None:
        """Blended candidates (item indices, scores, the index in ``names`` of the component
        with the largest share); non-positive scores are left out."""
        item_ids = loaded.item_ids
        entries = zip(indices.tolist(), totals.tolist(), leaders.tolist(), strict=True)
        if not self.candidates:  # the first call (always, but for similar + personal)
            self.candidates = {item_ids[index]: _Candidate(total, names[leader])
                               for index, total, leader in entries if total > 0}
            return
        for index, total, leader in entries:
            if total <= 0:
                continue
            item_id = item_ids[index]
            held = self.candidates.get(item_id)
            if held is None:
                self.candidates[item_id] = _Candidate(total, names[leader])
            else:  # from another call (similar + personal): add up
                held.score += total

    def add_list(self, kind: str, ranked: list[tuple[str, float]], ref: str | None = None,
                 scale: float = 1.0) -> None:
        """Candidates from a ranked list, scored below every candidate held so far."""
        if not ranked:
            return
        floor = min((c.score for c in self.candidates.values()), default=2.0 * scale)
        best = ranked[0][1] or 1.0
        for item_id, score in ranked:
            if item_id not in self.candidates:
                self.candidates[item_id] = _Candidate(floor * 0.5 * score / best, kind, ref)

    def add_fallback(self, kind: str) -> None:
        if kind == "segment_popular":
            if not self.personalized:
                return
            for segment in selectors.subject_segment_list(site=self.site, subject=self.subject):
                segment_id = selectors.segment_id_for(site_id=self.site.pk, slug=segment["slug"])
                if segment_id is not None:
                    self.add_list(kind, ranked_list(site_id=self.site.pk, kind="popular",
                                                    segment=segment_id), ref=segment["name"])
        elif kind in ("trending", "popular"):
            self.add_list(kind, ranked_list(site_id=self.site.pk, kind=kind))

    def _filtering(self) -> bool:
        """Whether rules beyond exclusions may drop many candidates."""
        config = self.config
        return bool(self.request.filter is not None or config.include_categories or
                    config.exclude_categories or config.price_min is not None or
                    config.price_max is not None or any(
                        rule.factor is None for rule in config.context_rules))

    def limit_hint(self) -> int:
        return self.request.limit or self.config.limit

    # -- choosing --

    def choose(self, limit: int) -> list[tuple[str, float]]:
        """The best ``limit`` candidates that pass the rules, re-ranked."""
        rate = self.request.rotation_rate if self.request.rotation_rate is not None \
            else self.config.rotation_rate
        scores = {item: c.score for item, c in self.candidates.items()
                  if item not in self.excluded}
        if rate > 0:
            scores = rotated(scores, self._unclicked(), rate=rate)
        # Best first, ties by item id: sorted by id, then (stably) by score, with no key
        # function called per item.
        ranked = sorted(sorted(scores.items()), key=itemgetter(1), reverse=True)
        boosting = bool(self.request.boosters) or any(
            rule.factor is not None for rule in self.config.context_rules)
        size = max(limit * 3, 18)  # the pool diversity picks from
        pool = []
        for item_id, score in ranked:
            factor = self._factor(self.catalog.get(item_id))
            if factor is not None:
                pool.append((item_id, score * factor))
                if not boosting and len(pool) == size:
                    break  # without boosters the order holds: the rest cannot climb
        if boosting:
            pool = sorted(pool, key=lambda pair: (-pair[1], pair[0]))[:size]
        config = self.config
        if config.diversity == Placement.Diversity.CATEGORY_CAP:
            pool = category_capped(pool, len(pool), cap=config.category_cap,
                                   category=self._category)
        diversity = self.request.diversity
        if diversity is None and config.diversity == Placement.Diversity.MMR:
            diversity = config.diversity_lambda
        if diversity:
            pool = mmr(pool, limit, diversity=diversity,
                       similarity=self._similarity_rows([item for item, _ in pool]))
        return pool[:limit]

    def _unclicked(self) -> dict[str, int]:
        hours = self.request.rotation_hours if self.request.rotation_hours is not None \
            else self.config.rotation_hours
        return self.history.unclicked(timezone.now() - timedelta(hours=hours))

    def _factor(self, item: CatalogItem | None) -> float | None:
        """None when the item may not be shown; else its score multiplier."""
        config = self.config
        if item is None:
            # Unknown to the catalog: shown only where nothing needs its fields.
            if config.only_available or config.include_categories or \
                    config.price_min is not None or config.price_max is not None or \
                    self.request.filter is not None:
                return None
            return 1.0
        if not item.available and config.only_available:
            return None
        if config.include_categories and item.category not in config.include_categories:
            return None
        if item.category in config.exclude_categories:
            return None
        if config.price_min is not None and (item.price is None or item.price < config.price_min):
            return None
        if config.price_max is not None and (item.price is None or item.price > config.price_max):
            return None
        if self.request.filter is not None and not self.request.filter(item):
            return None
        factor = 1.0
        for booster in self.request.boosters:
            if booster.matches(item):
                factor *= booster.factor
        for rule in config.context_rules:
            if rule.applies(self.context):
                if rule.factor is None:
                    if not rule.matches(item):
                        return None
                elif rule.matches(item):
                    factor *= rule.factor
        return factor

    def _category(self, item_id: str) -> str:
        item = self.catalog.get(item_id)
        return item.category if item is not None else ""

    def _similarity_rows(self, items: list[str]) -> Callable[[int], list[float]]:
        """Row i of the items' pairwise similarities: 1 in the same category, else their
        item-kNN similarity scaled by the row's largest (0..1). Made as MMR asks for a
        row: it reads only the rows of the items it picks."""
        indices = [self.item_index.get(item) for item in items]
        categories = [self._category(item) for item in items]

        def row(i: int) -> list[float]:
            index, category = indices[i], categories[i] or None
            similar = (self.loaded.neighbours(index) if self.loaded is not None and
                       index is not None else {}).get
            # A neighbour's similarity is at most 1 (scaled by the row's largest).
            return [1.0 if other_category == category else similar(other, 0.0)
                    for other, other_category in zip(indices, categories, strict=True)]

        return row

    # -- reasons --

    def reason(self, item_id: str, loaded: LoadedModel | None) -> Reason:
        candidate = self.candidates.get(item_id)
        component = candidate.component if candidate else "popular"
        item = self.catalog.get(item_id)
        if component == "similar":
            source = self._title(self.request.item)
            return Reason("similar_item", f"Similar to {source}", item_id=self.request.item)
        if component in ("knn", "session"):
            viewed = self._because(item_id)
            if viewed is not None:
                return Reason("because_viewed", f"Because you viewed {self._title(viewed)}",
                              item_id=viewed)
            return Reason("for_you", "Picked for you")
        if component == "content":
            category = item.category if item is not None and item.category else ""
            text = f"Similar to {category} items you like" if category else \
                "Similar to items you like"
            return Reason("category_affinity", text, category=category or None)
        if component == "segment_popular" and candidate is not None and candidate.ref:
            return Reason("segment_popular", f"Popular in {candidate.ref}",
                          segment=candidate.ref)
        if component == "trending":
            return Reason("trending", "Trending now")
        return Reason("popular", "Popular")

    def _because(self, item_id: str) -> str | None:
        """The viewed item that contributes most to this one: its similarity weighted as
        the session weighs it (the latest item 1, the one before 0.5, ...)."""
        if self.loaded is None or self.knn is None or item_id not in self.item_index:
            return None
        target = self.item_index[item_id]
        best, best_score = None, 0.0
        for viewed, neighbours, weight in self._viewed_neighbours():
            if weight <= best_score:
                break  # similarities are at most 1 and weights fall: none later can win
            score = neighbours.get(target, 0.0) * weight
            if score > best_score:
                best, best_score = viewed, score
        return best

    def _viewed_neighbours(self) -> list[tuple[str, dict[int, float], float]]:
        """The items "because you viewed" may name, latest first, each with its neighbours
        and its weight (0.5 ** its place); the same for every item of the list: made once."""
        if self._viewed is None:
            assert self.loaded is not None
            looked = [*reversed(self.recent),
                      *reversed(_distinct_last(self.history.sequence, 10))]
            self._viewed = [
                (viewed, self.loaded.neighbours(self.item_index[viewed]), 0.5**age)
                for age, viewed in enumerate(dict.fromkeys(looked))
                if viewed in self.item_index]
        return self._viewed

    def _title(self, item_id: str | None) -> str:
        item = self.catalog.get(item_id) if item_id else None
        return (item.title or item.item_id) if item is not None else (item_id or "")


def _distinct_last(sequence: list[str], n: int) -> list[str]:
    """The last n distinct items of a sequence, oldest first."""
    seen: list[str] = []
    for item in reversed(sequence):
        if item not in seen:
            seen.append(item)
            if len(seen) == n:
                break
    return list(reversed(seen))


def _summed(entries: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted item indices and their summed weights (one user's row)."""
    summed: dict[int, float] = {}
    for item, weight in entries:  # a few dozen: plain Python beats np.unique here
        summed[item] = summed.get(item, 0.0) + weight
    items = sorted(summed)
    return (np.array(items, dtype=np.int32),
            np.array([summed[i] for i in items], dtype=np.float32))


def _best(ids: np.ndarray, scores: np.ndarray, n: int, banned: np.ndarray | None
          ) -> tuple[np.ndarray, np.ndarray]:
    """The n best positive (id, score) pairs, best first, ids ``banned`` (a mask over
    the items) left out."""
    if banned is not None and ids.size:
        keep = ~banned[ids]
        ids, scores = ids[keep], scores[keep]
    return top_n_sparse_row(ids, scores, n)


def _dense_best(vector: np.ndarray, n: int, banned: np.ndarray) -> np.ndarray:
    """``vector`` (non-negative scores, one per item) with the ``banned`` items and all but
    its n best zeroed, in place (scores equal to the n-th best are all kept)."""
    vector[banned] = 0.0
    # Partitioning the many zeros too would take several times longer; compress and a
    # multiplication by the mask cost less than boolean indexing.
    positive = np.compress(vector > 0, vector)
    if positive.size > n:
        cut = np.partition(positive, positive.size - n)[positive.size - n]
        np.multiply(vector, vector >= cut, out=vector)
    return vector


class _ComponentScorer:
    """One visitor's candidates from each component of a Hybrid model, the best ``want``
    of each with the ``banned`` item indices left out: sparse (ids and scores, best first)
    or dense (a score per item, 0 for none)."""

    def __init__(self, model: Any, *, knn: Any, known: list[tuple[int, float]],
                 recent: list[int], banned: list[int], want: int) -> None:
        self.model, self.knn, self.known, self.recent, self.want = model, knn, known, recent, want
        self.banned_at = np.array(banned, dtype=np.int64)
        self._banned: np.ndarray | None = None
        self.items, self.item_weights = _summed(known)

    def serves(self, name: str) -> bool:
        """Whether the component can give this visitor candidates."""
        if name == "session":
            return bool(self.recent) and self.knn is not None
        return name in self.model.models_ and (name == "popularity" or self.items.size > 0)

    def sparse(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name == "popularity":
            return self._popular()
        return _best(*self._sums(name, dense=False), self.want, self._banned_mask())

    def dense(self, name: str, out: np.ndarray) -> None:
        """The component's scores into ``out`` (zeros, one per item)."""
        if name == "popularity":
            ids, scores = self._popular()
            out[ids] = scores
            return
        out[:] = self._sums(name, dense=True)
        _dense_best(out, self.want, self.banned_at)

    def _popular(self) -> tuple[np.ndarray, np.ndarray]:
        """The first ``want`` items of the popularity ranking (best first, ties by index)
        that are not banned and score above 0."""
        popular = self.model.models_["popularity"]
        banned = set(self.banned_at.tolist())
        ranking = popular.ranking_[: self.want + len(banned)].tolist()
        ids = np.array([i for i in ranking if i not in banned][: self.want], dtype=np.int32)
        scores = popular.scores_[ids]
        positive = int(np.count_nonzero(scores))  # the ranking ends with the zeros
        return ids[:positive], scores[:positive]

    def _banned_mask(self) -> np.ndarray:
        if self._banned is None:
            self._banned = np.zeros(self.model.n_items_, dtype=bool)
            self._banned[self.banned_at] = True
        return self._banned

    def _sums(self, name: str, *, dense: bool) -> Any:
        """The component's scores of every candidate: (ids, scores), or one per item."""
        if name == "content":
            # A profile of the latest items: cheaper, and what the visitor likes now.
            content = self.model.models_[name]
            latest, latest_weights = _summed(self.known[-CONTENT_LAST:])
            return content.scores_dense(latest, latest_weights) if dense else \
                content._scores_one(latest, latest_weights)
        if name == "session":
            similarity, items, weights = self.knn.similarity_, *_session_weights(self.recent)
        else:  # knn
            knn = self.model.models_[name]
            similarity, items = knn.similarity_, self.items
            weights = query_weights_of(self.item_weights, knn.query)
        return neighbour_sums(similarity, items, weights) if dense else \
            neighbour_scores(similarity, items, weights)


def _session_weights(recent: list[int], *, decay: float = 0.5
                     ) -> tuple[np.ndarray, np.ndarray]:
    """A session's items (oldest first in ``recent``) weighted as ``session_rows`` weighs
    them: the latest 1, the one before ``decay``, ... each item at its latest place."""
    items: list[int] = []
    for item in reversed(recent):
        if item not in items:
            items.append(item)
    weights = np.array([decay**age for age in range(len(items))], dtype=np.float32)
    return np.array(items, dtype=np.int64), weights


# --- the answer, as the API sends it (cached) -------------------------------------------


def rec_list_as_dict(rec: RecList) -> dict[str, Any]:
    """The JSON shape of a list (see the API schema)."""
    return {
        "placement": rec.placement, "title": rec.title, "rec_token": rec.token,
        "variant": rec.variant or None, "model_version": rec.model_version,
        "more": rec.more,
        "items": [_item_dict(entry) for entry in rec.items],
    }


def _item_dict(entry: RecItem) -> dict[str, Any]:
    item = entry.item
    reason = {"kind": entry.reason.kind, "text": entry.reason.text}
    for key in ("item_id", "segment", "category"):
        value = getattr(entry.reason, key)
        if value:
            reason[key] = value
    return {
        "item_id": entry.item_id, "title": item.title if item else "",
        "url": item.url if item else "", "image_url": item.image_url if item else "",
        "price": item.price if item else None, "currency": item.currency if item else "",
        "category": item.category if item else "", "score": entry.score, "reason": reason,
    }


def answer_cached(*, site: Site, subject: str, cache_field: str | None,
                  counters: Sequence[tuple[str, int]] = ()
                  ) -> tuple[int, bytes | None, list[int]]:
    """(the site's generation, the cached JSON answer if fresh, the throttle counters'
    new values): one cache round trip.

    ``cache_field`` None (a "next items" page) is never cached; with REC_CACHE_SECONDS 0
    nothing is.
    """
    if recommend_settings.REC_CACHE_SECONDS <= 0:
        cache_field = None
    return answer_cache.get(site.pk, subject, cache_field, counters=counters)


def recommendations_answer(*, site: Site, subject: str, request: RecRequest,
                           cache_field: str | None, consent_subjects: list[str] | None = None,
                           history_subjects: list[str] | None = None,
                           personalized: bool = True, generation: int | None = None) -> bytes:
    """The JSON answer for a subject: from the cache when fresh, else computed and kept.

    Personalization follows the subject's consent (any of ``consent_subjects``). With the
    ``generation`` of an ``answer_cached`` miss, the cache is not asked again.
    """
    if generation is None:
        generation, cached, _ = answer_cached(site=site, subject=subject,
                                              cache_field=cache_field)
        if cached is not None:
            return cached
    rec = recommendation_list(
        site=site, subject=subject, request=request, generation=generation,
        personalized=personalized and bool(subject), history_subjects=history_subjects,
        consent_subjects=(consent_subjects or [subject]) if site.require_consent else None)
    body = orjson.dumps(rec_list_as_dict(rec))
    if cache_field is not None:
        answer_cache.set(site.pk, subject, cache_field, body, generation=generation,
                         seconds=recommend_settings.REC_CACHE_SECONDS)
    return body
