"""Use-case handlers: each loads through the unit of work, decides, and returns a receipt.

Handlers never save; the application saves what the unit of work collected, so that
several commands can share one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.commands import Command
from domain.usecases import cases, intake, notifications, privacy, registry, reports, seals, tokens
from domain.usecases.base import Receipt, Work

Handler = Callable[[Work, Any], Receipt]

HANDLERS: dict[type[Command], Handler] = {
    **registry.HANDLERS,
    **intake.HANDLERS,
    **cases.HANDLERS,
    **reports.HANDLERS,
    **notifications.HANDLERS,
    **tokens.HANDLERS,
    **privacy.HANDLERS,
    **seals.HANDLERS,
}

__all__ = ["HANDLERS", "Handler", "Receipt", "Work"]
