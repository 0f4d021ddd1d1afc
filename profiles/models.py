"""Tables of the profiles app: profiles, identity links, RFM cut points, segments."""

from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tracking.models import Site


class Profile(models.Model):
    """What one subject of one site did, kept current as events arrive.

    ``subject`` is the profile's owner: a user's subject hash once the visitor
    identified, else the anonymous subject hash. ``session_keys``, ``days`` and
    ``purchase_keys`` hold the members of the distinct counts (space-separated:
    internal state, cheap to write for a million profiles), so an update never
    counts one twice; ``affinity`` holds raw decayed scores (normalized when read).
    """

    class Stage(models.TextChoices):
        NEW = "new"
        ACTIVE = "active"
        AT_RISK = "at_risk", "at risk"
        CHURNED = "churned"
        VIP = "vip", "VIP"

    # No index of its own: the unique (site, subject) index serves lookups by site.
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+", db_index=False)
    subject = models.CharField(max_length=32)
    identified = models.BooleanField(default=False, help_text="The owner is a known user.")
    aliases = models.TextField(blank=True, default="",
                               help_text="Other subject hashes whose events are here.")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    last_purchase = models.DateTimeField(null=True, blank=True)
    events = models.PositiveIntegerField(default=0)
    by_type = models.JSONField(default=dict, help_text="Events per event name.")
    sessions = models.PositiveIntegerField(default=0)
    session_keys = models.TextField(blank=True, default="")
    active_days = models.PositiveIntegerField(default=0)
    days = models.TextField(blank=True, default="",
                            help_text="Active days, as days since 1970-01-01.")
    purchases = models.PositiveIntegerField(default=0, help_text="Distinct transactions.")
    purchase_keys = models.TextField(blank=True, default="")
    monetary = models.FloatField(default=0.0, help_text="Purchase value net of refunds.")
    engaged_ms = models.BigIntegerField(default=0)
    devices = models.JSONField(default=dict, help_text="Events per device type.")
    affinity = models.JSONField(default=dict, help_text="Decayed category scores at last_seen.")
    r_score = models.PositiveSmallIntegerField(null=True, blank=True)
    f_score = models.PositiveSmallIntegerField(null=True, blank=True)
    m_score = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_segment = models.CharField(max_length=24, blank=True)
    stage = models.CharField(max_length=8, choices=Stage.choices, default=Stage.NEW)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "subject"], name="profile_one_per_subject")
        ]
        # No other index: each one costs on every one of a million inserts of a recompute,
        # and the segment sweep's filters read a site's profiles in one scan anyway.

    def __str__(self) -> str:
        return f"{self.subject[:12]}… ({self.events} events)"

    @property
    def alias_list(self) -> list[str]:
        """The other subject hashes whose events landed here (devices before login)."""
        return self.aliases.split()

    @property
    def avg_engaged_seconds(self) -> float:
        """Engaged time per session."""
        return self.engaged_ms / 1000 / self.sessions if self.sessions else 0.0


class IdentityLink(models.Model):
    """An anonymous subject that identified as a user: its events belong to that user."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    anon_subject = models.CharField(max_length=32)
    user_subject = models.CharField(max_length=32)
    day = models.DateField(help_text="Day of the identifying event (the daily cap counts these).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "anon_subject"], name="link_one_per_anon")
        ]
        indexes = [models.Index(fields=["site", "user_subject", "day"], name="link_user_day")]

    def __str__(self) -> str:
        return f"{self.anon_subject[:12]}… -> {self.user_subject[:12]}…"


class SiteState(models.Model):
    """Per-site bookkeeping: RFM cut points, the data clock, the recompute watermark.

    The row is locked by every profile update of its site, which serializes them.
    """

    class Clock(models.TextChoices):
        WALL = "wall", "wall clock (a live site)"
        DATA = "data", "the latest event (imported history, demos)"

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="+",
                                primary_key=True)
    clock_mode = models.CharField(
        max_length=4, choices=Clock.choices, default=Clock.WALL,
        help_text="What 'now' is for recency, lifecycle stages and rule windows.")
    clock = models.DateTimeField(null=True, blank=True, help_text="The latest event time seen.")
    watermark = models.BigIntegerField(
        default=0, help_text="Events up to this id are in the last full recompute.")
    rfm_mode = models.CharField(max_length=10, blank=True)
    rfm_cuts = models.JSONField(default=dict, blank=True)
    cuts_at = models.DateTimeField(null=True, blank=True)
    recomputed_at = models.DateTimeField(null=True, blank=True)
    clusters_at = models.DateTimeField(null=True, blank=True)
    cluster_silhouette = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"profiles of site {self.site_id}"

    def now(self) -> datetime:
        """The site's "now": the wall clock, or its latest event under the data clock."""
        if self.clock_mode == self.Clock.DATA and self.clock is not None:
            return self.clock
        return timezone.now()


class AppliedBatch(models.Model):
    """A batch of events already folded into profiles (a task run twice applies it once)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=40)
    max_pk = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "digest"], name="applied_batch_unique")
        ]

    def __str__(self) -> str:
        return f"batch {self.digest[:10]} (up to event {self.max_pk})"


class Segment(models.Model):
    """A named group of subjects: by rules (admin-defined) or by K-Means clustering."""

    class Kind(models.TextChoices):
        RULE = "rule"
        CLUSTER = "cluster"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.RULE)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    size = models.PositiveIntegerField(default=0, editable=False)
    silhouette = models.FloatField(null=True, blank=True, editable=False)
    centroid = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "slug"], name="segment_slug_per_site")
        ]
        ordering = ["site", "kind", "name"]

    def __str__(self) -> str:
        return self.name


class Condition(models.Model):
    """One test of a rule segment. Conditions in the same group must all hold (AND);
    the segment holds when any group does (OR)."""

    class Kind(models.TextChoices):
        EVENTS = "events", "events: at least N events (of a name, item, category, window)"
        RFM_SEGMENT = "rfm", "RFM segment is one of"
        STAGE = "stage", "lifecycle stage is one of"
        LAST_SEEN = "last_seen", "last seen more than N days ago"
        METRIC = "metric", "a measure compared with a number"
        AFFINITY = "affinity", "category affinity at least"

    class Metric(models.TextChoices):
        EVENTS = "events"
        SESSIONS = "sessions"
        ACTIVE_DAYS = "active_days", "active days"
        PURCHASES = "purchases"
        MONETARY = "monetary"
        RECENCY_DAYS = "recency_days", "days since last seen"

    class Op(models.TextChoices):
        GTE = "gte", ">="
        LTE = "lte", "<="

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="conditions")
    group = models.PositiveSmallIntegerField(
        default=1, help_text="Conditions with the same group number are ANDed; groups are ORed.")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    negate = models.BooleanField(default=False, help_text="NOT: the condition must fail.")
    event_name = models.CharField(max_length=40, blank=True, help_text="events: e.g. view_item")
    item_id = models.CharField(max_length=100, blank=True, help_text="events: one item")
    category = models.CharField(max_length=200, blank=True,
                                help_text="events, affinity: an item category")
    min_count = models.PositiveIntegerField(default=1, help_text="events: at least this many")
    within_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="events: in the last N hours (blank: ever)")
    values = models.JSONField(default=list, blank=True,
                              help_text='rfm, stage: e.g. ["Champions", "Loyal"]')
    days = models.PositiveIntegerField(null=True, blank=True, help_text="last_seen: N days")
    metric = models.CharField(max_length=12, choices=Metric.choices, blank=True)
    op = models.CharField(max_length=3, choices=Op.choices, default=Op.GTE)
    number = models.FloatField(null=True, blank=True, help_text="metric, affinity: the number")

    class Meta:
        ordering = ["group", "pk"]

    def __str__(self) -> str:
        return f"group {self.group}: {self.get_kind_display()}"


class Membership(models.Model):
    """A subject in a segment from ``since`` until ``until`` (open while current)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=32)
    since = models.DateTimeField()
    until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "subject"], condition=Q(until__isnull=True),
                                    name="membership_one_current")
        ]
        indexes = [
            models.Index(fields=["site", "subject"], name="membership_site_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.subject[:12]}… in {self.segment_id} since {self.since:%Y-%m-%d}"


class SegmentSize(models.Model):
    """A segment's size at a moment: the points of its chart."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="sizes")
    at = models.DateTimeField()
    size = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["segment", "at"], name="segmentsize_segment_at")]
        ordering = ["at"]

    def __str__(self) -> str:
        return f"{self.size} at {self.at:%Y-%m-%d %H:%M}"
