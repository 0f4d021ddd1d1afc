"""Tables of the tracking app: sites, consent, the raw outbox, clean events, counts, items."""

import uuid

from django.db import models
from django.db.models import Q


class Site(models.Model):
    """A site that embeds recsite: its keys, allowed origins and retention."""

    name = models.CharField(max_length=200)
    public_key = models.CharField(max_length=64, unique=True, editable=False)
    # Only a SHA-256 of the secret key is kept; the key itself is shown once.
    secret_key_hash = models.CharField(max_length=64, unique=True, editable=False)
    secret_key_hint = models.CharField(
        max_length=16, editable=False, help_text="The first characters, to recognise a key."
    )
    # Keyed-hash salt that turns anon and user ids into pseudonymous subject ids.
    subject_salt = models.CharField(max_length=64, editable=False)
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text='Origins allowed to send events, e.g. ["https://shop.example"]; "*" allows any.',
    )
    retention_days = models.PositiveIntegerField(default=395)
    require_consent = models.BooleanField(
        default=True, help_text="Store a visitor's events only with consent for analytics."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def allows_origin(self, origin: str | None) -> bool:
        origins = self.allowed_origins or []
        return "*" in origins or (origin is not None and origin.rstrip("/") in origins)


class ConsentReceipt(models.Model):
    """One consent choice as given: append-only proof of what was chosen, when and how."""

    class Source(models.TextChoices):
        BANNER = "banner"
        GPC = "gpc"
        API = "api"

    receipt_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="consent_receipts")
    subject = models.CharField(max_length=32, db_index=True)
    user_subject = models.CharField(max_length=32, null=True, blank=True, db_index=True)
    analytics = models.BooleanField()
    personalization = models.BooleanField()
    banner_version = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices)
    client_ts = models.DateTimeField(null=True, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-recorded_at"]

    def __str__(self) -> str:
        return f"receipt {self.receipt_id} ({self.source}, {self.recorded_at:%Y-%m-%d %H:%M})"


class ConsentRecord(models.Model):
    """The current consent state of one subject of one site (the latest receipt)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="consent_records")
    subject = models.CharField(max_length=32)
    analytics = models.BooleanField()
    personalization = models.BooleanField()
    receipt = models.ForeignKey(ConsentReceipt, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "subject"], name="consent_one_per_subject")
        ]

    def __str__(self) -> str:
        granted = [p for p in ("analytics", "personalization") if getattr(self, p)]
        return f"{self.subject}: {', '.join(granted) or 'nothing'}"


class RawBatch(models.Model):
    """The outbox: the accepted events of one request, stored in one insert, then processed."""

    class Source(models.TextChoices):
        BROWSER = "browser"
        SERVER = "server"
        IMPORT = "import"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="raw_batches")
    source = models.CharField(max_length=8, choices=Source.choices)
    received_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    # Accepted events as a JSON array (orjson bytes, stored as text): subject ids
    # are already keyed hashes here; no raw ids and no IP ever reach this table.
    events = models.TextField()
    n_events = models.PositiveIntegerField()
    rejected = models.JSONField(default=dict, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "raw batches"
        indexes = [
            models.Index(
                fields=["id"], condition=Q(processed_at__isnull=True), name="rawbatch_pending"
            ),
            models.Index(fields=["processed_at"], name="rawbatch_processed_at"),
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.n_events} events, {self.source})"


class Event(models.Model):
    """A clean event, one row per item it names (item_index 0 for an event without items)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    event_id = models.UUIDField()
    item_index = models.PositiveSmallIntegerField(default=0)
    subject = models.CharField(max_length=32)
    user_subject = models.CharField(max_length=32, null=True, blank=True)
    session = models.CharField(max_length=32)
    name = models.CharField(max_length=40)
    item_id = models.CharField(max_length=100, blank=True)
    ts = models.DateTimeField()
    value = models.FloatField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    quantity = models.IntegerField(null=True, blank=True)
    engaged_ms = models.IntegerField(null=True, blank=True)
    scroll_pct = models.SmallIntegerField(null=True, blank=True)
    rec_token = models.TextField(blank=True)
    source = models.CharField(max_length=8, choices=RawBatch.Source.choices)
    context = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "event_id", "item_index"], name="event_unique_per_site"
            )
        ]
        indexes = [
            models.Index(fields=["site", "subject", "ts"], name="event_subject_ts"),
            models.Index(fields=["site", "ts"], name="event_site_ts"),
            models.Index(fields=["site", "item_id"], name="event_site_item"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.item_id} @ {self.ts:%Y-%m-%d %H:%M:%S}"


class DailyCount(models.Model):
    """Events per site, day and outcome: accepted, stored, and every reason for a drop."""

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted"
        STORED = "stored"
        DUPLICATE = "duplicate"
        BOT_USER_AGENT = "bot_user_agent"
        BOT_RATE = "bot_rate"
        NOISE = "noise"
        REJECTED_INVALID = "rejected_invalid"
        REJECTED_NO_CONSENT = "rejected_no_consent"
        REJECTED_TOO_LARGE = "rejected_too_large"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    outcome = models.CharField(max_length=24, choices=Outcome.choices)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "day", "outcome"], name="dailycount_unique")
        ]
        ordering = ["-day", "outcome"]

    def __str__(self) -> str:
        return f"{self.day} {self.outcome}: {self.count}"


class Item(models.Model):
    """A catalog item of a site."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=100)
    title = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(default=list, blank=True)
    price = models.FloatField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    url = models.URLField(max_length=2048, blank=True)
    image_url = models.URLField(max_length=2048, blank=True)
    available = models.BooleanField(default=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "external_id"], name="item_unique_per_site")
        ]

    def __str__(self) -> str:
        return self.title or self.external_id


# --- privacy: banner texts, key history, data subject requests, the audit log ----------


class BannerVersion(models.Model):
    """The texts a consent banner version showed: what a receipt's banner_version means."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="banner_versions")
    version = models.CharField(max_length=64)
    language = models.CharField(max_length=16, blank=True)
    texts = models.JSONField(help_text="The banner's texts as shown (title, text, buttons...).")
    first_shown_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "version", "language"],
                                    name="banner_version_unique")
        ]
        ordering = ["site", "-first_shown_at"]

    def __str__(self) -> str:
        return f"{self.version} ({self.language or 'default'})"


class PreviousSubjectKey(models.Model):
    """A retired subject-hash key, kept so erasure and export still find rows hashed with it.

    It is deleted once the site's retention has passed since it was retired: the rows
    hashed with it can then no longer be linked to anyone's id.
    """

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="previous_keys")
    key = models.CharField(max_length=64, editable=False)
    retired_at = models.DateTimeField()
    forget_after = models.DateTimeField()

    class Meta:
        ordering = ["-retired_at"]

    def __str__(self) -> str:
        return f"key retired {self.retired_at:%Y-%m-%d}"


class DataSubjectRequest(models.Model):
    """An erasure or export of one data subject: the workflow row and, when done, the proof.

    Only the subject's keyed hash is stored, and an erasure blanks it once done: what
    remains is the request id, who asked, the times and the rows deleted per table.
    """

    class Kind(models.TextChoices):
        ERASE = "erase"
        EXPORT = "export"

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    class IdType(models.TextChoices):
        USER = "user", "user id"
        ANON = "anon", "anon id"

    request_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="subject_requests")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    id_type = models.CharField(max_length=4, choices=IdType.choices)
    subject = models.CharField(max_length=32, blank=True, db_index=True,
                               help_text="The keyed hash of the id (blank once erased).")
    older_subjects = models.TextField(
        blank=True, help_text="The id's hashes under the site's retired keys, space-separated.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    requested_by = models.CharField(max_length=200)
    requested_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True,
                              help_text="Rows deleted (erase) or exported (export) per table.")
    error = models.TextField(blank=True)
    export_file = models.CharField(max_length=300, blank=True, help_text="Under EXPORT_DIR.")
    export_bytes = models.BigIntegerField(null=True, blank=True)
    export_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = "data subject request"

    def __str__(self) -> str:
        return f"{self.kind} {self.request_id} ({self.status})"


class PersonalDataAccess(models.Model):
    """The audit log: who viewed or acted on personal data, when, and on what.

    Append-only on PostgreSQL (a trigger refuses UPDATE and DELETE); an erasure may
    only blank the subject hash of its entries.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=200, help_text="staff username, api:<key hint> or shell")
    action = models.CharField(max_length=40)
    target = models.CharField(max_length=100, help_text="The model or endpoint concerned.")
    object_id = models.CharField(max_length=64, blank=True)
    # No constraint and no cascade: deleting a site leaves its log entries as they are.
    site = models.ForeignKey(Site, on_delete=models.DO_NOTHING, null=True, blank=True,
                             related_name="+", db_constraint=False)
    subject = models.CharField(max_length=32, blank=True, db_index=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = "personal data access"
        verbose_name_plural = "personal data accesses (audit log)"
        permissions = [
            ("view_personal_data",
             "Can see personal data: subjects, events, consent receipts, profiles"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"
