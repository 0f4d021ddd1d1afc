"""The flagged event: an accepted event dropped as a bot's, kept for review only."""

from django.db import models

from tracking.models import RawBatch, Site


class FlaggedEvent(models.Model):
    """One event the cleaning dropped as a bot's, with the reason; never trained on."""

    class Reason(models.TextChoices):
        BOT_USER_AGENT = "bot_user_agent", "crawler user agent"
        BOT_RATE = "bot_rate", "too many events in a second"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    event_id = models.UUIDField()
    subject = models.CharField(max_length=32)
    name = models.CharField(max_length=40)
    ts = models.DateTimeField()
    reason = models.CharField(max_length=24, choices=Reason.choices)
    source = models.CharField(max_length=8, choices=RawBatch.Source.choices)
    user_agent = models.CharField(max_length=512, blank=True)
    event = models.JSONField(help_text="the event as accepted (subject hashes, no raw ids)")
    flagged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "event_id"],
                                               name="flaggedevent_unique")]
        indexes = [models.Index(fields=["site", "flagged_at"])]
        ordering = ["-flagged_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"
