"""QR codes: signed tokens, signing keys, images and printable sheets.

A code points at ``{public_url}/s/{token}``; the token names an officer (badge) or a unit
(code) and the version of its QR identity, signed with a key of the keyring. A citizen's
page calls :func:`resolve_token` (or :func:`verify_token`, then :func:`resolve`) and gets
the :class:`QrTarget` to rate, or a :class:`QrCodeError` whose message it shows:
:class:`ForgedToken` (names no one), :class:`StaleCode` (rotated), :class:`RevokedCode`.

- :mod:`adapters.qr.keys`: the keyring (``PINGJING_QR_KEYS`` or the key file)
- :mod:`adapters.qr.tokens`: the token format, signing and verification, the scan URL
- :mod:`adapters.qr.lookup`: claims resolved against the directory; a unit's sheet contents
- :mod:`adapters.qr.images`: PNG and SVG images
- :mod:`adapters.qr.sheet`: the printable HTML sheet of a unit
"""

from __future__ import annotations

from adapters.qr.errors import ForgedToken, QrCodeError, QrConfigError, RevokedCode, StaleCode
from adapters.qr.images import png_bytes, svg_bytes, svg_element
from adapters.qr.keys import Keyring, SigningKey, load_keyring, parse_keys
from adapters.qr.lookup import QrTarget, UnitSheet, issued_target, resolve, resolve_token, unit_sheet
from adapters.qr.sheet import render_sheet
from adapters.qr.tokens import QrClaim, make_token, scan_url, verify_token
from adapters.qr.urls import code_urls

__all__ = [
    "ForgedToken",
    "Keyring",
    "QrClaim",
    "QrCodeError",
    "QrConfigError",
    "QrTarget",
    "RevokedCode",
    "SigningKey",
    "StaleCode",
    "UnitSheet",
    "code_urls",
    "issued_target",
    "load_keyring",
    "make_token",
    "parse_keys",
    "png_bytes",
    "render_sheet",
    "resolve",
    "resolve_token",
    "scan_url",
    "svg_bytes",
    "svg_element",
    "unit_sheet",
    "verify_token",
]
