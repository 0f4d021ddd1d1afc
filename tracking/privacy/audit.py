"""The audit log of personal data: who viewed or acted on it, when, and on what."""

from typing import Any

from tracking.models import PersonalDataAccess, Site

PERMISSION = "tracking.view_personal_data"


def access_log(*, actor: str, action: str, target: str, object_id: str = "",
               site: Site | int | None = None, subject: str = "",
               detail: dict[str, Any] | None = None) -> PersonalDataAccess:
    """Append one entry (the table refuses changes on PostgreSQL)."""
    site_id = site.pk if isinstance(site, Site) else site
    return PersonalDataAccess.objects.create(
        actor=actor[:200], action=action[:40], target=target[:100], object_id=object_id[:64],
        site_id=site_id, subject=subject[:32], detail=detail or {})


def actor_of(request: Any) -> str:
    """How a staff member appears in the log: their username (and id)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return "anonymous"
    return f"{user.get_username()} (#{user.pk})"


def may_see_personal_data(user: Any) -> bool:
    return bool(user and user.is_active and user.has_perm(PERMISSION))
