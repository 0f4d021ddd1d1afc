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
