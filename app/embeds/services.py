"""The rules of the embeds: which sites may show them, the parameters a box is framed with,
the signed tokens that stand in for cookies inside a cross-site frame, and what a box shows.

A box lives in an iframe on another site, where the browser may withhold our cookies (third-
party cookies blocked; ours are ``SameSite=Lax`` anyway, never sent in a cross-site frame). So
nothing here relies on the session:

- a form posted from a box carries a **form token** (:class:`EmbedSigner.form_token`): signed,
  naming the form, valid for ``FORM_TOKEN_MAX_AGE``; it replaces the session's CSRF token;
- a signed-in reader's follow box is given a **reader token** (:class:`EmbedSigner.reader_token`)
  by a top-level visit to our site (where the reader's own first-party cookie is sent), handed
  back to the article page in the URL's fragment and kept there by embed.js. It names the
  supporter and their ``session_version``, so "sign out everywhere" ends it too.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from app.accounts.models import Supporter
from app.extensions import db

#: How long a box's form may stay open before it must be loaded again.
FORM_TOKEN_MAX_AGE = 2 * 3600
#: Form tokens are dated to the start of their five minutes (a box's ``max-age``), so a box
#: for everyone is the same bytes, and keeps its ETag, all that while.
FORM_TOKEN_STEP = 300
#: How long a follow box stays signed in on an article site before the reader signs in again.
READER_TOKEN_MAX_AGE = 30 * 24 * 3600
#: The longest article address a box takes (its origin is what matters; the rest names it).
PAGE_MAX = 2000
#: ``utm_*`` values are at most 100 characters (the gift's columns).
UTM_MAX = 100
EXCERPT_MAX = 240


def normalise_origin(value: str) -> str:
    """``https://www.example.org`` (scheme, host, port when not the default), lower case.
    Raises ValueError for anything that is not an http(s) origin."""
    parts = urlsplit(value.strip())
    if (parts.scheme not in ("http", "https") or not parts.hostname
            or parts.path not in ("", "/") or parts.query or parts.fragment
            or parts.username or parts.password):
        raise ValueError(f"EMBED_ORIGINS takes origins such as https://www.example.org, "
                         f"not {value!r}")
    return origin_of(value)


def origin_of(url: str) -> str | None:
    """The origin of an http(s) address, as a browser writes it, or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def parse_origins(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``EMBED_ORIGINS`` (comma-separated, or a list) as normalised origins."""
    if isinstance(value, str):
        value = value.split(",")
    return tuple(dict.fromkeys(normalise_origin(v) for v in value or () if v.strip()))


@dataclass(frozen=True)
class Placement:
    """Where a box is shown: the article's address and its origin (one of EMBED_ORIGINS),
    the one the box's frame posts its messages to."""

    page: str
    origin: str


def placement(page: str | None, allowed: tuple[str, ...]) -> Placement | None:
    """The placement a box is framed with (embed.js sends ``page``: the article's address),
    or None when that address is not on one of the ``allowed`` sites."""
    if not page or len(page) > PAGE_MAX:
        return None
    origin = origin_of(page)
    if origin is None or origin not in allowed:
        return None
    return Placement(page=page.split("#", 1)[0], origin=origin)


def embed_utm(box: str, page: str) -> dict[str, str]:
    """The ``utm_*`` values a box's links carry to the donation form, so a gift says which box
    on which article brought it: medium ``embed``, source the box, content the article's
    address (host and path, cut to what the gift keeps)."""
    parts = urlsplit(page)
    host = parts.netloc.rpartition("@")[2]  # never a user name or password the address held
    return {"utm_medium": "embed", "utm_source": f"embed-{box}"[:UTM_MAX],
            "utm_content": f"{host}{parts.path}"[:UTM_MAX]}


def excerpt(markdown: str, limit: int = EXCERPT_MAX) -> str:
    """The start of an appeal letter as plain text, cut at a word, for a box."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", markdown)  # links and images: their text
    text = re.sub(r"[#>*_`~]+", "", text)
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.")
    return f"{cut}…"


#: The clock form tokens are dated by (seconds since the epoch).
clock = time.time


class _SteppedSigner(TimestampSigner):
    """Dates a token to the start of its ``FORM_TOKEN_STEP`` and measures its age the same
    way: a token is valid for ``FORM_TOKEN_MAX_AGE`` less up to one step."""

    def get_timestamp(self) -> int:
        now = int(clock())
        return now - now % FORM_TOKEN_STEP


class EmbedSigner:
    """The embeds' signed tokens. ``keys``: the signing keys, newest last (``signing_keys``)."""

    def __init__(self, keys: list[str] | str):
        self._forms = URLSafeTimedSerializer(keys, salt="embed-form", signer=_SteppedSigner)
        self._readers = URLSafeTimedSerializer(keys, salt="embed-reader")

    def form_token(self, form: str) -> str:
        return self._forms.dumps(form)

    def form_token_valid(self, token: str | None, form: str) -> bool:
        """Signed by us for this form, within ``FORM_TOKEN_MAX_AGE``."""
        if not token or len(token) > 200:
            return False
        try:
            return self._forms.loads(token, max_age=FORM_TOKEN_MAX_AGE) == form
        except BadSignature:  # SignatureExpired is one
            return False

    def reader_token(self, supporter_id: int, session_version: int) -> str:
        return self._readers.dumps([supporter_id, session_version])

    def reader(self, token: str | None) -> tuple[int, int] | None:
        """(supporter id, session version) from a reader token still valid, or None."""
        if not token or len(token) > 200:
            return None
        try:
            value = self._readers.loads(token, max_age=READER_TOKEN_MAX_AGE)
        except BadSignature:
            return None
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            return None
        return value[0], value[1]


def reader_for(token: str | None, signer: EmbedSigner) -> Supporter | None:
    """The supporter a follow box's reader token names, while it is theirs: the account can
    still be signed in to and has not ended its sign-ins since (``session_version``)."""
    found = signer.reader(token)
    if found is None:
        return None
    supporter = db.session.get(Supporter, found[0])
    if supporter is None or supporter.session_version != found[1] or not supporter.is_active:
        return None
    return supporter
