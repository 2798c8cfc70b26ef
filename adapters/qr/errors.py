"""Why a scanned QR code rates nobody, and why the QR settings cannot be used.

::

    PingjingError
     ├── QrCodeError                 a scanned code that rates nobody (a page for the citizen)
     │    ├── ForgedToken            malformed, unknown key id or bad signature; names no one (a ValidationError)
     │    ├── StaleCode              a genuine code of an identity rotated since (a RuleViolationError)
     │    └── RevokedCode            a genuine code of an identity withdrawn (a RuleViolationError)
    StoreConfigError
     └── QrConfigError               PINGJING_QR_KEYS, the key file or PINGJING_PUBLIC_URL is malformed (or a key weak)

A :class:`QrCodeError` carries what the citizen's page says, in Chinese and English
(``zh``, ``en``; ``str()`` gives both). Its message never names an officer or a unit:
for a forged token nothing it claims can be trusted, and the others need not say it.
"""

from __future__ import annotations

from typing import ClassVar

from adapters.store import StoreConfigError
from domain.errors import PingjingError, RuleViolationError, ValidationError


class QrCodeError(PingjingError):
    """A scanned code that cannot be used to rate anyone."""

    zh: ClassVar[str] = "此二维码无法使用。"
    en: ClassVar[str] = "This code cannot be used."

    def __init__(self) -> None:
        super().__init__(f"{self.zh} {self.en}")


class ForgedToken(QrCodeError, ValidationError):  # noqa: N818 - a scan's outcome, named as the pages know it
    """Not a code this bureau issued: malformed, signed with an unknown key, or a bad signature."""

    zh = "此二维码无效，不是本局发放的评警二维码。"
    en = "This code is not valid: it was not issued by the bureau."


class StaleCode(QrCodeError, RuleViolationError):  # noqa: N818 - same
    """A genuine code of an identity that was rotated after it was printed."""

    zh = "此二维码已更换，请向民警或窗口索取最新的二维码。"
    en = "This code was replaced; ask for the current one."


class RevokedCode(QrCodeError, RuleViolationError):  # noqa: N818 - same
    """A genuine code of an identity that was withdrawn."""

    zh = "此二维码已停用，不能再用于评价。"
    en = "This code has been withdrawn and can no longer be used to rate."


class QrConfigError(StoreConfigError):
    """The QR settings cannot be used: a malformed or weak signing key, an unreadable key file, a bad public URL."""
