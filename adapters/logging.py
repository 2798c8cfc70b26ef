"""Structured logs: JSON when not on a terminal, readable on one; never personal data.

One line per use case (``case_pushed``-style names come from the command), with the
case reference and the correlation id; domain code itself does not log.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from domain.application import Executed
from domain.errors import PingjingError


def configure(fmt: str = "auto", level: str = "info") -> None:
    """Set structlog up for this process (stderr, so stdout stays for command output)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def log_executed(executed: Executed) -> None:
    """The application observer: one log line per use case, no personal data."""
    log = structlog.get_logger("pingjing.usecase")
    outcome = executed.outcome
    fields: dict[str, Any] = {
        "actor": str(executed.context.actor),
        "channel": executed.context.channel.value,
        "ms": round(executed.seconds * 1000, 2),
    }
    if executed.meta is not None:
        fields["correlation_id"] = executed.meta.correlation_id
    ref = getattr(executed.command, "ref", None)
    if isinstance(outcome, PingjingError):
        if ref:
            fields["case_ref"] = ref
        log.warning(f"{executed.command.name}_refused", error=type(outcome).__name__, reason=str(outcome), **fields)
        return
    if outcome.case_ref:
        fields["case_ref"] = outcome.case_ref
    if outcome.state:
        fields["state"] = outcome.state
    if not executed.saved:
        log.info(f"{executed.command.name}_not_saved", **fields)
        return
    log.info(f"{executed.command.name}_done", **fields)
