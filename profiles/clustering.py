"""Cluster segments: refit K-Means on a site's profiles and keep one Segment per cluster.

A refit keeps a cluster's Segment (its slug, its history of sizes) when a new
centroid lies close to the old one, in the new fit's standard units; clusters
that find no match are new segments, and old ones left over are retired.
"""

from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone

from profiles import clusters
from profiles.conf import profile_settings
from profiles.models import Profile, Segment, SiteState
from profiles.segmenting import memberships_close, memberships_sync, segment_sizes_record
from profiles.state import affinity_normalized
from tracking.models import Site

MATCH_DISTANCE = 1.0  # standard units: a centroid closer than this is the same cluster


@dataclass(frozen=True)
class ProfileColumns:
    subjects: list[str]
    features: clusters.Features


def profile_columns(*, site: Site, as_of: int) -> ProfileColumns:
    """The behaviour features of every profile of a site."""
    from profiles.reading import epoch_us

    rows = list(Profile.objects.filter(site=site).order_by("pk").values_list(
        "subject", "events", "sessions", "active_days", "purchases", "monetary", "last_seen",
        "engaged_ms", "devices", "by_type", "affinity"))
    columns = list(zip(*rows, strict=True)) if rows else [()] * 11
    features = clusters.features_build(
        events=columns[1], sessions=columns[2], active_days=columns[3], purchases=columns[4],
        monetary=columns[5],
        recency_days=[(as_of - epoch_us(seen)) / 86_400_000_000 for seen in columns[6]],
        engaged_ms=columns[7], devices=columns[8], by_type=columns[9],
        affinity=[affinity_normalized(a) for a in columns[10]],
    )
    return ProfileColumns(subjects=list(columns[0]), features=features)


def clusters_refit(*, site: Site, as_of: int) -> int:
    """Refit the site's clusters and their memberships; returns k (0: too few profiles)."""
    columns = profile_columns(site=site, as_of=as_of)
    settings = profile_settings
    if len(columns.subjects) < settings.CLUSTER_MIN_PROFILES:
        return 0
    fit = clusters.kmeans_select(columns.features, k_range=settings.CLUSTER_K_RANGE,
                                 fit_sample=settings.CLUSTER_FIT_SAMPLE,
                                 silhouette_sample=settings.SILHOUETTE_SAMPLE)
    at = timezone.now()
    with transaction.atomic():
        segments = _segments_match(site, fit, columns.features)
        subjects = np.asarray(columns.subjects, dtype=object)
        for index, segment in enumerate(segments):
            members = set(subjects[fit.labels == index].tolist())
            memberships_sync(segment=segment, evaluated=None, matched=members, at=at)
        SiteState.objects.update_or_create(
            site=site, defaults={"clusters_at": at, "cluster_silhouette": fit.silhouette})
        segment_sizes_record(segments=segments, at=at)
    return fit.k


def _segments_match(site: Site, fit: clusters.ClusterFit,
                    features: clusters.Features) -> list[Segment]:
    """One Segment per new cluster: an old one whose centroid is near, else a new one."""
    old = list(Segment.objects.filter(site=site, kind=Segment.Kind.CLUSTER, is_active=True))
    mean, std = features.matrix.mean(axis=0), features.matrix.std(axis=0)
    std[std == 0] = 1.0
    taken: set[int] = set()
    chosen: list[Segment] = []
    words = clusters.descriptions(fit, features.names)
    next_number = _next_number(site)
    for index in range(fit.k):
        best, best_distance = None, MATCH_DISTANCE
        for segment in old:
            centroid = _old_centroid_z(segment, features.names, mean, std)
            if segment.pk in taken or centroid is None:
                continue
            distance = float(np.linalg.norm(centroid - fit.centers_z[index]))
            if distance < best_distance:
                best, best_distance = segment, distance
        if best is None:
            best = Segment(site=site, kind=Segment.Kind.CLUSTER, slug=f"cluster-{next_number}")
            next_number += 1
        taken.add(best.pk or -1)
        _segment_describe(best, fit, index, features.names, words[index])
        chosen.append(best)
    retired = [segment for segment in old if segment.pk not in taken]
    for segment in retired:
        memberships_close(site=site, at=timezone.now(), subjects=segment.memberships.filter(
            until__isnull=True).values_list("subject", flat=True))
        segment.is_active = False
        segment.size = 0
        segment.save(update_fields=["is_active", "size", "updated_at"])
    return chosen


def _segment_describe(segment: Segment, fit: clusters.ClusterFit, index: int,
                      names: tuple[str, ...], description: str) -> None:
    segment.name = description[:1].upper() + description[1:]
    segment.description = (
        f"K-Means cluster {index + 1} of {fit.k} (k chosen by silhouette "
        f"{fit.silhouette:.3f}); centroid: "
        + ", ".join(f"{name} {value:.2f}" for name, value in
                    zip(names, fit.centers_raw[index], strict=True)))
    silhouette = fit.cluster_silhouette[index]
    segment.silhouette = None if np.isnan(silhouette) else float(silhouette)
    segment.centroid = {name: float(v) for name, v in
                        zip(names, fit.centers[index], strict=True)}
    segment.is_active = True
    if segment.pk is None:
        segment.save()
    else:  # not the size: memberships_sync moves it with the members
        segment.save(update_fields=["name", "description", "silhouette", "centroid",
                                    "is_active", "updated_at"])


def _old_centroid_z(segment: Segment, names: tuple[str, ...], mean: np.ndarray,
                    std: np.ndarray) -> np.ndarray | None:
    """An old centroid in the new fit's standard units (None if the features changed)."""
    if set(segment.centroid) != set(names):
        return None
    centroid = np.array([segment.centroid[name] for name in names], dtype=np.float64)
    return (centroid - mean) / std


def _next_number(site: Site) -> int:
    numbers = [int(slug.removeprefix("cluster-")) for slug in Segment.objects.filter(
        site=site, kind=Segment.Kind.CLUSTER).values_list("slug", flat=True)
        if slug.removeprefix("cluster-").isdigit()]
    return max(numbers, default=0) + 1
