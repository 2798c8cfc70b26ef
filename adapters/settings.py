"""Settings from the environment (``PINGJING_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable, with the defaults of a single-machine county install."""

    model_config = SettingsConfigDict(env_prefix="PINGJING_", extra="ignore")

    #: Where the events live; see :mod:`adapters.store`.
    database: str | None = None
    #: ``auto``: readable on a terminal, JSON otherwise.
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: A TOML file with the SLA policy (limits per step); unset: the packaged defaults of DESIGN §5.
    sla_policy: Path | None = None
    #: Where published reports (HTML, Markdown, JSON) are written.
    reports_dir: Path = Path("var") / "reports"
    #: A TOML file with the notification recipients and channels; unset: structured-log notifications only.
    notifications: Path | None = None
