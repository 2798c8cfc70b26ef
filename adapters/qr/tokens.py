"""QR tokens: whom a code rates and which version of their identity, signed with a key of the keyring.

A token is ``{key id}.{o|u}{KEY}.{version}.{mac}``, e.g. ``k1.o130117.1.3q2-7wF0tmDcLKEh0hHcAw``:
the signing key's id; ``o`` (officer) with the badge or ``u`` (unit) with the unit code; the QR
identity's version; and the first 128 bits of HMAC-SHA256(secret, ``pingjing-qr/1:`` + everything
before the last dot), base64url without padding (22 characters). Every character is URL-safe and a
six-digit badge gives 35 characters, so the code stays sparse enough to scan from a badge.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from adapters.qr.errors import ForgedToken, QrConfigError
from adapters.qr.keys import Keyring, SigningKey
from domain.errors import ValidationError
from domain.values import QrSubject

MAC_BYTES = 16
MAX_TOKEN_LENGTH = 80  # the longest: an 8-character key id, a 32-character code, version 999999999
SCAN_PATH = "/s/"
_DOMAIN = b"pingjing-qr/1:"
#: A badge or unit code, as the domain's commands take it.
KEY_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9-]{1,31}")
_TOKEN = re.compile(
    r"(?P<signed>(?P<kid>[a-z0-9]{1,8})\.(?P<subject>[ou])(?P<key>[A-Z0-9][A-Z0-9-]{1,31})"
    r"\.(?P<version>[1-9][0-9]{0,8}))\.(?P<mac>[A-Za-z0-9_-]{22})"
)
_LETTER = {QrSubject.OFFICER: "o", QrSubject.UNIT: "u"}
_SUBJECT = {letter: subject for subject, letter in _LETTER.items()}


@dataclass(frozen=True)
class QrClaim:
    """What a genuine token says: subject, badge or unit code, identity version, signing key id."""

    subject: QrSubject
    key: str
    version: int
    key_id: str


def make_token(keyring: Keyring, subject: QrSubject, key: str, version: int) -> str:
    """A token for the identity ``subject``/``key`` at ``version``, signed with the active key."""
    if not KEY_PATTERN.fullmatch(key):
        raise ValidationError(f"{key!r} is not a badge or unit code (upper-case letters, digits, '-')")
    if not 1 <= version <= 999_999_999:
        raise ValidationError(f"QR identity version {version} is out of range")
    signing = keyring.active
    signed = f"{signing.kid}.{_LETTER[QrSubject(subject)]}{key}.{version}"
    return f"{signed}.{_mac(signing, signed)}"


def verify_token(keyring: Keyring, token: str) -> QrClaim:
    """The claim of a token signed with a key of ``keyring``; anything else is a :class:`ForgedToken`."""
    found = _TOKEN.fullmatch(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if found is None:
        raise ForgedToken()
    key = keyring.get(found["kid"])
    if key is None:
        raise ForgedToken()
    # The encoded strings are compared, not the decoded bytes: the last base64 character carries
    # two spare bits, and a token differing there must not pass as the same one.
    if not hmac.compare_digest(_mac(key, found["signed"]), found["mac"]):
        raise ForgedToken()
    return QrClaim(_SUBJECT[found["subject"]], found["key"], int(found["version"]), key.kid)


def scan_url(public_url: str, token: str) -> str:
    """Where a code points: ``{public_url}/s/{token}``."""
    return f"{check_public_url(public_url)}{SCAN_PATH}{token}"


def token_from_text(text: str) -> str:
    """The token in a scanned URL (``…/s/TOKEN``) or the token itself, as typed or pasted."""
    text = text.strip()
    _, sep, tail = text.rpartition(SCAN_PATH)
    return tail if sep else text


def check_public_url(url: str) -> str:
    """``PINGJING_PUBLIC_URL`` without a trailing slash; refuse what cannot prefix a scan URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise QrConfigError(f"PINGJING_PUBLIC_URL {url!r}: expected http(s)://HOST[:PORT][/PATH]")
    if parts.query or parts.fragment or any(ch.isspace() for ch in url.strip()):
        raise QrConfigError(f"PINGJING_PUBLIC_URL {url!r}: no query, fragment or spaces allowed")
    return url.strip().rstrip("/")


def _mac(key: SigningKey, signed: str) -> str:
    digest = hmac.new(key.secret, _DOMAIN + signed.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:MAC_BYTES]).decode("ascii").rstrip("=")
