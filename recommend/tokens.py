"""The rec_token: a signed, compact record of one recommendation list.

It names the placement, the experiment and variant, the model version, the subject (a
prefix of its pseudonymous hash), the items shown, the time, and the items of earlier
pages (so "next items" never repeats one). It travels with the widget and comes back on
impressions, clicks and conversions; a token that fails its signature is ignored.
"""

import time
from dataclasses import dataclass, field

from django.core import signing

SALT = "recsite.rec_token"
SUBJECT_CHARS = 16
# The tracker accepts params.rec_token up to 1,024 characters.
MAX_CHARS = 1000


@dataclass(frozen=True)
class RecToken:
    placement: str
    subject: str  # the first SUBJECT_CHARS of the subject hash
    items: tuple[str, ...]
    variant: str = ""
    experiment: int | None = None
    model_version: int | None = None
    issued: int = field(default_factory=lambda: int(time.time()))
    earlier: tuple[str, ...] = ()  # items of the pages before this one
    complete: bool = True  # False when the item list was left out to stay under MAX_CHARS

    @property
    def shown(self) -> tuple[str, ...]:
        """Every item of this list so far, earlier pages included."""
        return self.earlier + self.items

    def names_item(self, item_id: str) -> bool:
        """Whether the item was in this list (any item, for a token without its list)."""
        return not self.complete or item_id in self.items


def token_sign(token: RecToken) -> str:
    """The token as a URL-safe signed string of at most MAX_CHARS characters."""
    body: dict = {"p": token.placement, "s": token.subject[:SUBJECT_CHARS],
                  "i": list(token.items), "t": token.issued}
    if token.variant:
        body["v"] = token.variant
    if token.experiment is not None:
        body["e"] = token.experiment
    if token.model_version is not None:
        body["m"] = token.model_version
    if token.earlier:
        body["x"] = list(token.earlier)
    signed = signing.dumps(body, salt=SALT, compress=True)
    if len(signed) > MAX_CHARS:  # very long item ids: keep the token, drop the lists
        body.pop("x", None)
        body["i"] = []
        body["c"] = 0
        signed = signing.dumps(body, salt=SALT, compress=True)
    return signed


def token_read(text: object, *, max_age_seconds: float | None = None) -> RecToken | None:
    """The token behind a signed string, or None if it is not one of ours (or too old)."""
    if not isinstance(text, str) or not text or len(text) > MAX_CHARS:
        return None
    try:
        body = signing.loads(text, salt=SALT)
        token = RecToken(
            placement=str(body["p"]), subject=str(body["s"]),
            items=tuple(str(i) for i in body["i"]), variant=str(body.get("v", "")),
            experiment=_int_or_none(body.get("e")), model_version=_int_or_none(body.get("m")),
            issued=int(body["t"]), earlier=tuple(str(i) for i in body.get("x", ())),
            complete=bool(body.get("c", 1)))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    if max_age_seconds is not None and time.time() - token.issued > max_age_seconds:
        return None
    return token


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]
