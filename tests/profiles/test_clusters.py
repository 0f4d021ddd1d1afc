"""Cluster segments: k by silhouette, words from centroids, refits that keep their segments."""

import numpy as np
import pytest

from profiles import clusters
from profiles.models import Membership, Profile, Segment, SiteState
from profiles.services import clusters_refit
from tests.profiles.conftest import import_slice


def blobs(centers: list[list[float]], per_blob: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(center, 0.3, size=(per_blob, len(center)))
                      for center in centers])


def test_kmeans_selection_finds_the_k_of_separated_groups():
    matrix = blobs([[0, 0, 0], [6, 0, 0], [0, 6, 0], [0, 0, 6]], per_blob=150)
    features = clusters.Features(matrix=matrix, raw=matrix, names=("a", "b", "c"))

    fit = clusters.kmeans_select(features, k_range=(2, 7), fit_sample=400,
                                 silhouette_sample=300)

    assert fit.k == 4
    assert fit.silhouette == max(fit.silhouette_by_k.values()) > 0.8
    assert sorted(fit.sizes.tolist()) == [150, 150, 150, 150]  # fit on 400, all assigned
    for blob in range(4):
        assert len(set(fit.labels[blob * 150:(blob + 1) * 150].tolist())) == 1
    assert fit.cluster_silhouette.shape == (4,) and (fit.cluster_silhouette > 0.7).all()


def test_too_few_rows_to_cluster_is_an_error():
    features = clusters.Features(matrix=np.zeros((2, 3)), raw=np.zeros((2, 3)),
                                 names=("a", "b", "c"))
    with pytest.raises(ValueError, match="too few"):
        clusters.kmeans_select(features, k_range=(2, 8), fit_sample=10, silhouette_sample=10)


def test_a_centroid_in_words():
    names = (*clusters.BASE_FEATURES, "affinity:lamps", "affinity:rugs")
    raw = dict.fromkeys(names, 0.0) | {"purchases": 2.0, "mobile_share": 0.9,
                                       "affinity:lamps": 0.8, "affinity:rugs": 0.1}
    z = dict.fromkeys(names, 0.0) | {"sessions": 1.2, "mobile_share": 1.0, "recency_days": -0.1}

    text = clusters.describe(np.array([raw[n] for n in names]), np.array([z[n] for n in names]),
                             names)

    assert text == "frequent mobile buyers of lamps"


def test_features_log_counts_and_share_devices():
    features = clusters.features_build(
        events=[10, 1], sessions=[2, 1], active_days=[2, 1], purchases=[1, 0],
        monetary=[30.0, -5.0], recency_days=[1.0, 40.0], engaged_ms=[60_000, 0],
        devices=[{"mobile": 3, "desktop": 1}, {}], by_type=[{"add_to_cart": 5}, {}],
        affinity=[{"lamps": 1.0}, {"rugs": 1.0, "lamps": 0.5}])
    column = dict(zip(features.names, features.raw.T, strict=True))
    assert column["engaged_seconds"].tolist() == [30.0, 0.0]
    assert column["mobile_share"].tolist() == [0.75, 0.75]  # unknown: the population's mean
    assert column["cart_share"].tolist() == [0.5, 0.0]
    assert column["monetary"].tolist() == [30.0, 0.0]  # refunds beyond spend count as none
    assert column["affinity:lamps"].tolist() == [1.0, 0.5]
    logged = dict(zip(features.names, features.matrix.T, strict=True))
    assert logged["events"].tolist() == pytest.approx(np.log1p([10, 1]).tolist())


@pytest.mark.django_db
def test_refit_on_online_retail_makes_described_segments_and_keeps_them(site, deliver,
                                                                        data_clock):
    import_slice(deliver, site, "online-retail")
    profiles = Profile.objects.filter(site=site).count()

    k = clusters_refit(site_id=site.pk)

    segments = list(Segment.objects.filter(site=site, kind=Segment.Kind.CLUSTER,
                                           is_active=True))
    assert 2 <= k == len(segments) <= 8
    assert sum(s.size for s in segments) == profiles
    for segment in segments:
        assert segment.name and segment.silhouette is not None and "silhouette" in \
            segment.description
        assert Membership.objects.filter(segment=segment, until__isnull=True).count() == \
            segment.size
    assert SiteState.objects.get(site=site).cluster_silhouette is not None

    assert clusters_refit(site_id=site.pk) == k  # the same profiles: the same clusters ...
    again = set(Segment.objects.filter(site=site, kind=Segment.Kind.CLUSTER, is_active=True)
                .values_list("slug", "size"))
    assert again == {(s.slug, s.size) for s in segments}  # ... kept under their slugs
    assert not Membership.objects.filter(site=site, until__isnull=False).exists()


@pytest.mark.django_db
def test_too_few_profiles_are_not_clustered(site, deliver, data_clock):
    import_slice(deliver, site, "movielens")  # five users
    assert clusters_refit(site_id=site.pk) == 0
    assert not Segment.objects.filter(site=site).exists()
