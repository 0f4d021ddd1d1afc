"""Data subject requests: create one for an id, run it (erase or export), expire exports.

A request stores only the keyed hash of the id. Running is idempotent: the request row
is locked, a finished request is left as it is, and the work and the status change
commit together, so a crash leaves the request pending for the next try.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from tracking.conf import tracking_settings
from tracking.models import DataSubjectRequest, Site
from tracking.privacy.audit import access_log
from tracking.privacy.erasure import erasure_transaction, subjects_erase
from tracking.privacy.exporting import export_file_delete, export_write, subjects_export
from tracking.privacy.subjects import raw_id_clean, subject_hashes, subjects_resolve

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestCreated:
    request: DataSubjectRequest
    created: bool  # False: a pending request for the same subject and kind was reused


def subject_request_create(*, site: Site, kind: str, id_type: str, raw_id: object,
                           requested_by: str, enqueue: bool = True) -> RequestCreated:
    """A pending request for this id (a pending one of the same kind is reused), queued to
    run once the transaction commits unless ``enqueue`` is False (the caller runs it).
    Raises tracking.validation.Invalid for a bad id."""
    if kind not in DataSubjectRequest.Kind.values:
        raise ValueError(f"kind must be one of {DataSubjectRequest.Kind.values}")
    raw = raw_id_clean(raw_id, id_type)
    subject, *older = subject_hashes(site=site, id_type=id_type, raw_id=raw)
    with transaction.atomic():
        pending = DataSubjectRequest.objects.select_for_update().filter(
            site=site, kind=kind, subject=subject,
            status=DataSubjectRequest.Status.PENDING).first()
        if pending is not None:
            return RequestCreated(request=pending, created=False)
        request = DataSubjectRequest.objects.create(
            site=site, kind=kind, id_type=id_type, subject=subject,
            older_subjects=" ".join(older), requested_by=requested_by)
        access_log(actor=requested_by, action=f"request_{kind}", target="DataSubjectRequest",
                   object_id=str(request.pk), site=site, subject=subject)
        request_id = str(request.pk)
        if enqueue:
            transaction.on_commit(lambda: _enqueue(request_id))
    return RequestCreated(request=request, created=True)


def _enqueue(request_id: str) -> None:
    from tracking.tasks import run_subject_request  # tasks call services, not the other way

    run_subject_request.delay(request_id)


def subject_request_run(*, request_id: str) -> DataSubjectRequest:
    """Carry out a pending request; a finished one (or one another worker holds) is
    returned as it is. A failure is recorded on the request and re-raised."""
    try:
        with transaction.atomic():
            request = DataSubjectRequest.objects.select_for_update(skip_locked=True) \
                .select_related("site").filter(pk=request_id,
                                               status=DataSubjectRequest.Status.PENDING).first()
            if request is None:
                return DataSubjectRequest.objects.get(pk=request_id)
            if request.kind == DataSubjectRequest.Kind.ERASE:
                _erase(request)
            else:
                _export(request)
    except Exception as error:
        DataSubjectRequest.objects.filter(pk=request_id).update(
            status=DataSubjectRequest.Status.FAILED, finished_at=timezone.now(),
            error=f"{type(error).__name__}: {error}"[:2000])
        logger.exception("data subject request %s failed", request_id)
        raise
    request.refresh_from_db()
    return request


def subject_request_retry(*, request: DataSubjectRequest) -> DataSubjectRequest:
    """Put a failed request back in the queue."""
    updated = DataSubjectRequest.objects.filter(
        pk=request.pk, status=DataSubjectRequest.Status.FAILED).update(
        status=DataSubjectRequest.Status.PENDING, error="", finished_at=None)
    if updated:
        request_id = str(request.pk)
        transaction.on_commit(lambda: _enqueue(request_id))
    request.refresh_from_db()
    return request


def _subjects(request: DataSubjectRequest) -> set[str]:
    given = {request.subject, *request.older_subjects.split()} - {""}
    return subjects_resolve(site=request.site, subjects=given)


def _erase(request: DataSubjectRequest) -> None:
    subjects = _subjects(request)
    with erasure_transaction():
        counts = subjects_erase(site=request.site, subjects=subjects, keep_request=request)
        # The proof keeps no hash: the request id, the times and the counts.
        DataSubjectRequest.objects.filter(pk=request.pk).update(
            subject="", older_subjects="", counts={**counts, "subjects": len(subjects)},
            status=DataSubjectRequest.Status.DONE, finished_at=timezone.now())
    logger.info("erasure %s: %s", request.pk, counts)


def _export(request: DataSubjectRequest) -> None:
    subjects = _subjects(request)
    document = subjects_export(site=request.site, subjects=subjects,
                               request_id=str(request.pk))
    path = export_write(request=request, document=document)
    now = timezone.now()
    DataSubjectRequest.objects.filter(pk=request.pk).update(
        counts={**document["counts"], "subjects": len(subjects)},
        status=DataSubjectRequest.Status.DONE, finished_at=now,
        export_file=path.name, export_bytes=path.stat().st_size,
        export_expires_at=now + timedelta(hours=tracking_settings.EXPORT_KEEP_HOURS))
    logger.info("export %s: %d bytes", request.pk, path.stat().st_size)


def exports_expire(*, now=None) -> int:
    """Delete export files past their time and forget whom they were about; returns how many."""
    now = now or timezone.now()
    expired = DataSubjectRequest.objects.filter(
        kind=DataSubjectRequest.Kind.EXPORT, export_expires_at__lt=now).exclude(
        export_file="", subject="")
    count = 0
    for request in expired:
        count += export_file_delete(request)
    expired.update(export_file="", subject="", older_subjects="")
    return count
