"""System checks that turn contradictory tracking settings into errors with hints."""

from django.core.checks import Error, Tags, register
from rest_framework.throttling import SimpleRateThrottle

from tracking.conf import tracking_settings


@register(Tags.compatibility)
def tracking_settings_check(app_configs, **kwargs) -> list[Error]:
    errors = []
    for name in ("THROTTLE_KEY_RATE", "THROTTLE_IP_RATE"):
        rate = getattr(tracking_settings, name)
        if rate is None:
            continue
        try:
            SimpleRateThrottle.parse_rate(SimpleRateThrottle, rate)
        except (ValueError, KeyError, IndexError):
            errors.append(Error(f"RECSITE_{name}={rate!r} is not a rate",
                                hint="Use DRF's syntax, e.g. '1000/s' or '600/m', or 'off'.",
                                id="tracking.E001"))
    if tracking_settings.MAX_EVENT_BYTES > tracking_settings.MAX_BODY_BYTES:
        errors.append(Error("RECSITE_MAX_EVENT_BYTES exceeds RECSITE_MAX_BODY_BYTES",
                            hint="One event cannot be larger than the body that carries it.",
                            id="tracking.E002"))
    return errors
