"""The scan URL of a target's current code, as printed, signed with the active key."""

from __future__ import annotations

from collections.abc import Callable

from adapters.qr.keys import load_keyring
from adapters.qr.lookup import QrTarget
from adapters.qr.tokens import check_public_url, make_token, scan_url
from adapters.settings import Settings


def code_urls(settings: Settings) -> Callable[[QrTarget], str]:
    """The scan URL of each target's current code (a bad ``PINGJING_PUBLIC_URL`` or key is refused first)."""
    public_url = check_public_url(settings.public_url)
    keyring = load_keyring(settings)

    def url_of(target: QrTarget) -> str:
        return scan_url(public_url, make_token(keyring, target.subject, target.key, target.version))

    return url_of
