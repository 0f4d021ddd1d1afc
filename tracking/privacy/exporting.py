"""Export: every row held about a set of subject hashes, as one JSON document (a ZIP if large).

tracking adds its own rows (events, the subjects' events still in raw batches, consent
state and receipts with the banner texts they answered, requests and audit entries
about them); the other apps add theirs through the ``subjects_exported`` signal.
"""

import io
import os
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from tracking.conf import tracking_settings
from tracking.models import (
    BannerVersion,
    ConsentReceipt,
    ConsentRecord,
    DataSubjectRequest,
    Event,
    PersonalDataAccess,
    RawBatch,
    Site,
)
from tracking.privacy.subjects import subject_filter
from tracking.signals import subjects_exported


def rows_of(queryset: QuerySet) -> list[dict[str, Any]]:
    """Every column of every row, as plain values (what a subject access request shows)."""
    return list(queryset.order_by("pk").values())


def subjects_export(*, site: Site, subjects: set[str], request_id: str = "") -> dict[str, Any]:
    """The export document: who, when, and every table's rows about these subjects."""
    tables: dict[str, list[dict[str, Any]]] = {
        "tracking.Event": rows_of(Event.objects.filter(site=site).filter(
            subject_filter(subjects, "subject", "user_subject"))),
        "tracking.RawBatch.events": raw_batch_events(site=site, subjects=subjects),
        "tracking.ConsentRecord": rows_of(ConsentRecord.objects.filter(
            site=site, subject__in=subjects)),
    }
    receipts = ConsentReceipt.objects.filter(site=site).filter(
        subject_filter(subjects, "subject", "user_subject"))
    tables["tracking.ConsentReceipt"] = rows_of(receipts)
    versions = set(receipts.values_list("banner_version", flat=True))
    tables["tracking.BannerVersion"] = rows_of(BannerVersion.objects.filter(
        site=site, version__in=versions))
    tables["tracking.DataSubjectRequest"] = rows_of(DataSubjectRequest.objects.filter(
        site=site, subject__in=subjects))
    tables["tracking.PersonalDataAccess"] = rows_of(PersonalDataAccess.objects.filter(
        subject__in=subjects))
    for _, result in subjects_exported.send(sender=DataSubjectRequest, site=site,
                                            subjects=frozenset(subjects)):
        tables.update(result or {})
    return {
        "request_id": request_id,
        "site": site.name,
        "generated_at": timezone.now(),
        "subjects": sorted(subjects),
        "note": "Subjects are keyed hashes of your ids: the ids themselves are not stored.",
        "counts": {table: len(rows) for table, rows in sorted(tables.items())},
        "tables": dict(sorted(tables.items())),
    }


def raw_batch_events(*, site: Site, subjects: set[str]) -> list[dict[str, Any]]:
    """The subjects' events still waiting in (or kept briefly after) the raw outbox."""
    if not subjects:
        return []
    match = Q()
    for subject in subjects:
        match |= Q(events__contains=subject)
    found = []
    for batch in RawBatch.objects.filter(site=site).filter(match).order_by("pk"):
        for event in orjson.loads(batch.events):
            if event.get("subject") in subjects or event.get("user_subject") in subjects:
                found.append({"batch_id": batch.pk, "received_at": batch.received_at,
                              "user_agent": batch.user_agent, "event": event})
    return found


def export_bytes(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
                        default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Model):
        return value.pk
    if isinstance(value, datetime | Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(type(value).__name__)


def export_write(*, request: DataSubjectRequest, document: dict[str, Any]) -> Path:
    """Write the document under EXPORT_DIR (JSON, or a ZIP holding it when large); returns
    the path. Written beside and renamed, so a reader never sees half a file."""
    body = export_bytes(document)
    folder = tracking_settings.EXPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{request.request_id}.json"
    if len(body) > tracking_settings.EXPORT_ZIP_BYTES:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name, body)
        body, name = buffer.getvalue(), f"{request.request_id}.zip"
    path = folder / name
    partial = folder / f".{name}.partial"
    partial.write_bytes(body)
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return path


def export_path(request: DataSubjectRequest) -> Path | None:
    """The export file of a request, if it still exists."""
    if not request.export_file:
        return None
    path = tracking_settings.EXPORT_DIR / request.export_file
    return path if path.is_file() else None


def export_file_delete(request: DataSubjectRequest) -> int:
    """Delete a request's export file; returns 1 if one was there."""
    path = export_path(request)
    if path is None:
        return 0
    path.unlink(missing_ok=True)
    return 1
