"""Tables of the recommend app: trained model versions."""

from django.db import models
from django.db.models import Q

from tracking.models import Site


class ModelVersion(models.Model):
    """One training of a site's model: its parameters, data window, metrics and artifact."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        TRAINING = "training"
        READY = "ready"
        FAILED = "failed"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="model_versions")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    is_active = models.BooleanField(default=False)
    progress = models.FloatField(default=0.0, help_text="0 to 1, while training")
    stage = models.CharField(max_length=40, blank=True)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    n_events = models.PositiveIntegerField(default=0)
    n_subjects = models.PositiveIntegerField(default=0)
    n_items = models.PositiveIntegerField(default=0)
    data_from = models.DateTimeField(null=True, blank=True)
    data_to = models.DateTimeField(null=True, blank=True)
    training_seconds = models.FloatField(null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    artifact = models.CharField(max_length=500, blank=True, help_text="under MODEL_DIR")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["site"], condition=Q(is_active=True),
                                    name="modelversion_one_active_per_site"),
        ]
        indexes = [models.Index(fields=["site", "-created_at"], name="modelversion_site_recent")]

    def __str__(self) -> str:
        return f"{self.site} v{self.pk} ({self.status}{', active' if self.is_active else ''})"


class TrainingSite(Site):
    """A site seen from the recommend admin: its model versions and a "train now" action."""

    class Meta:
        proxy = True
        verbose_name = "site to train"


# --- serving -------------------------------------------------------------------------


def _default_fallback() -> list[str]:
    return ["segment_popular", "trending", "popular"]


class Placement(models.Model):
    """Where recommendations show on a site ("home", "product", "cart"), and how they are
    chosen: strategy, limit, business rules, diversity, context rules, cold-start chain."""

    class Strategy(models.TextChoices):
        HYBRID = "hybrid", "hybrid (blend weights below, or the model's tuned ones)"
        KNN = "knn", "item-kNN only"
        CONTENT = "content", "content only"
        SESSION = "session", "session only (because you viewed)"
        POPULARITY = "popularity", "popular"
        TRENDING = "trending", "trending now"

    class Diversity(models.TextChoices):
        NONE = "none"
        MMR = "mmr", "MMR (maximal marginal relevance)"
        CATEGORY_CAP = "category_cap", "at most N per category"

    class Fallback(models.TextChoices):
        SEGMENT_POPULAR = "segment_popular", "popular in the visitor's segments"
        TRENDING = "trending"
        POPULAR = "popular"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="placements")
    name = models.SlugField(max_length=40, help_text='As the widget names it: "home", "product".')
    title = models.CharField(max_length=200, blank=True, help_text="The widget's heading.")
    strategy = models.CharField(max_length=12, choices=Strategy.choices,
                                default=Strategy.HYBRID)
    weights = models.JSONField(default=dict, blank=True, help_text=(
        'Hybrid blend weights, e.g. {"knn": 1, "session": 0.5, "content": 0.1, '
        '"popularity": 0.05}; empty: the model\'s (tuned) weights for this placement.'))
    limit = models.PositiveSmallIntegerField(default=6, help_text="Items shown by default.")
    exclude_purchased = models.BooleanField(default=True)
    exclude_seen_days = models.PositiveIntegerField(null=True, blank=True, help_text=(
        "Leave out items the visitor interacted with in the last N days (0: never leave "
        "them out; blank: always, as the models do)."))
    only_available = models.BooleanField(default=True)
    include_categories = models.JSONField(default=list, blank=True,
                                          help_text='Only these categories, e.g. ["lamps"].')
    exclude_categories = models.JSONField(default=list, blank=True)
    price_min = models.FloatField(null=True, blank=True)
    price_max = models.FloatField(null=True, blank=True)
    diversity = models.CharField(max_length=12, choices=Diversity.choices,
                                 default=Diversity.NONE)
    diversity_lambda = models.FloatField(
        default=0.3, help_text="MMR: 0 relevance only .. 1 as varied as possible.")
    category_cap = models.PositiveSmallIntegerField(default=2,
                                                    help_text="Per-category cap: at most N.")
    fallback = models.JSONField(default=_default_fallback, blank=True, help_text=(
        'Cold start: lists that fill the widget in order, from "segment_popular", '
        '"trending", "popular".'))
    context_rules = models.JSONField(default=list, blank=True, help_text=(
        'Boost or filter by time of day, device and country, e.g. [{"when": {"device": '
        '["mobile"], "hours": [18, 23]}, "boost": {"category": {"in": ["lamps"]}}, '
        '"factor": 1.5}] or with "filter" instead of "boost" (see recommend/query.py).'))
    rotation_rate = models.FloatField(default=0.0, help_text=(
        "0..1: each recent impression without a click multiplies an item's score by 1 - rate."))
    rotation_hours = models.FloatField(default=24.0, help_text="How long an impression counts.")
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="placement_name_per_site"),
        ]
        ordering = ["site", "name"]

    def __str__(self) -> str:
        return f"{self.site}: {self.name}"


class Experiment(models.Model):
    """A test on a placement: subjects split among weighted variants by a hash."""

    class Allocation(models.TextChoices):
        FIXED = "fixed", "fixed weights"
        THOMPSON = "thompson", "Thompson sampling (a bandit on clicks)"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="experiments")
    placement = models.ForeignKey(Placement, on_delete=models.CASCADE,
                                  related_name="experiments")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=40, help_text="Part of the assignment hash: keep it.")
    is_active = models.BooleanField(default=True)
    allocation = models.CharField(max_length=8, choices=Allocation.choices,
                                  default=Allocation.FIXED)
    min_impressions = models.PositiveIntegerField(
        default=1000, help_text="Below this many impressions per variant, results warn.")
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    bandit_weights = models.JSONField(default=dict, blank=True, editable=False)
    bandit_updated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["placement"], condition=Q(is_active=True),
                                    name="experiment_one_active_per_placement"),
            models.UniqueConstraint(fields=["site", "slug"], name="experiment_slug_per_site"),
        ]
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    """One arm of an experiment; ``overrides`` replace the placement's settings for it."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE,
                                   related_name="variants")
    name = models.SlugField(max_length=40)
    weight = models.FloatField(default=1.0, help_text="Share of subjects (relative).")
    is_control = models.BooleanField(default=False)
    is_holdout = models.BooleanField(default=False, help_text=(
        "Holdout: no personalization, the plain popular list (the baseline of the lift)."))
    overrides = models.JSONField(default=dict, blank=True, help_text=(
        'Placement settings for this arm, e.g. {"strategy": "knn"} or {"weights": {...}, '
        '"diversity": "mmr", "diversity_lambda": 0.5}.'))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="variant_name_unique"),
        ]
        ordering = ["experiment", "-is_control", "name"]

    def __str__(self) -> str:
        return self.name


class Dismissal(models.Model):
    """A subject said "not interested" in an item: never recommended to them again."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=32)
    item_id = models.CharField(max_length=100)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "subject", "item_id"],
                                    name="dismissal_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.subject[:12]}… not interested in {self.item_id}"


class Attribution(models.Model):
    """An event joined to the recommendation that led to it (from its signed rec_token):
    an impression (a list shown), a click, an add_to_cart or a purchase of a shown item."""

    class Kind(models.TextChoices):
        IMPRESSION = "impression"
        CLICK = "click"
        ADD_TO_CART = "add_to_cart"
        PURCHASE = "purchase"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    event_pk = models.BigIntegerField(help_text="The Event row (one per event and item).")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    ts = models.DateTimeField()
    placement = models.CharField(max_length=40)
    variant = models.CharField(max_length=40, blank=True)
    experiment_id = models.BigIntegerField(null=True, blank=True)
    model_version = models.BigIntegerField(null=True, blank=True)
    subject = models.CharField(max_length=32)
    item_id = models.CharField(max_length=100, blank=True)
    value = models.FloatField(null=True, blank=True)
    issued_at = models.DateTimeField(help_text="When the recommendation was made.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "event_pk"], name="attribution_once"),
        ]
        indexes = [
            models.Index(fields=["site", "placement", "ts"], name="attribution_placement_ts"),
            models.Index(fields=["experiment_id", "variant"], name="attribution_experiment"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.placement}/{self.variant or '-'} @ {self.ts:%Y-%m-%d %H:%M}"


class Dashboard(Site):
    """A site seen from the dashboards (charts of its recommendations, events and models)."""

    class Meta:
        proxy = True
        verbose_name = "dashboard"
