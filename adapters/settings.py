"""Settings from the environment (``PINGJING_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
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
    #: QR signing keys ``ID:BASE64SECRET`` separated by commas, the active one first; unset: ``qr_key_file``.
    qr_keys: SecretStr | None = None
    #: The QR signing keys when ``qr_keys`` is unset; created on first use (one random key, mode 0600).
    qr_key_file: Path = Path("var") / "qr-keys.json"
    #: Where ``pingjing qr`` writes codes and sheets unless told otherwise.
    qr_dir: Path = Path("var") / "qr"
    #: The address citizens reach; a QR code points at ``{public_url}/s/{token}``.
    public_url: str = "http://127.0.0.1:8000"
    #: An officer sees their own rates of a closed period only when they rest on at least this many ratings (k).
    officer_min_ratings: int = Field(default=5, ge=1)
    #: One rating per device per officer or unit within this many hours (0: no limit).
    rating_window_hours: float = Field(default=24, ge=0)
    #: The secret device identifiers are hashed with (``BASE64``); unset: ``device_key_file``.
    device_key: SecretStr | None = None
    #: The device-hash secret when ``device_key`` is unset; created on first use (mode 0600).
    device_key_file: Path = Path("var") / "device-key"
    #: Requests one address may make per minute to the citizen pages' forms (0: no limit).
    citizen_posts_per_minute: int = Field(default=30, ge=0)
    #: Wrong phone digits one case may be tracked with per hour before tracking pauses.
    track_attempts_per_hour: int = Field(default=5, ge=1)
    #: ``/healthz`` answers 503 while a projection is more than this many events behind the log.
    health_max_lag: int = Field(default=10_000, ge=0)
    #: The master key that wraps each citizen's data key (``BASE64``, 32 random bytes); several separated by
    #: commas while rotating: the first wraps, every one unwraps. Unset: ``data_key_file``.
    data_key: SecretStr | None = None
    #: The master keys when ``data_key`` is unset; created on first use with one random key (mode 0600).
    #: Unset: ``data-key`` beside the SQLite file (``var/data-key`` for the default store), else ``var/data-key``.
    data_key_file: Path | None = None
    #: A closed case's contact is erased this many days after it closed (the retention job).
    retention_days: int = Field(default=180, ge=1)
