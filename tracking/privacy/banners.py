"""Banner versions: which texts a consent banner version showed, recorded when first rendered."""

import hashlib
import logging

import orjson

from tracking.models import BannerVersion, Site

logger = logging.getLogger(__name__)

# What this process has recorded already: a page render costs one dict lookup after that.
_recorded: set[tuple[str, str, str, str]] = set()


def banner_version_record(*, public_key: str, version: str, language: str,
                          texts: dict[str, str]) -> None:
    """Keep the texts of this banner version (the first texts seen for a version and language
    stay: change the version when the texts change). Never raises: a page must render."""
    digest = hashlib.sha256(orjson.dumps(texts, option=orjson.OPT_SORT_KEYS)).hexdigest()
    memo = (public_key, version, language, digest)
    if memo in _recorded:
        return
    try:
        site = Site.objects.filter(public_key=public_key).only("pk").first()
        if site is None:
            return
        shown, created = BannerVersion.objects.get_or_create(
            site=site, version=version[:64], language=language[:16],
            defaults={"texts": texts})
        if not created and shown.texts != texts:
            logger.warning("consent banner %s (%s) of site %s now shows other texts than when "
                           "it was first shown: give it a new version so receipts stay "
                           "provable", version, language or "default", site.pk)
        _recorded.add(memo)
    except Exception:
        logger.exception("recording consent banner version %s failed", version)
