"""The one place where everything is built from settings; tests call it with fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from adapters import logging as pj_logging
from adapters.privacy.vault import vault_for
from adapters.settings import Settings
from adapters.store import Store, StoreConfigError, resolve
from domain.application import Observer, PingjingApp
from domain.clock import Clock, IdSource
from domain.errors import ValidationError
from domain.sla import SlaPolicy


@dataclass
class Runtime:
    """What a process runs on: its settings, its store, the application and the SLA policy."""

    settings: Settings
    store: Store
    app: PingjingApp
    policy: SlaPolicy

    def close(self) -> None:
        """Release database connections."""
        self.app.close()


def bootstrap(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    ids: IdSource | None = None,
    observers: Sequence[Observer] | None = None,
    configure_logging: bool = True,
) -> Runtime:
    """Build the runtime; nothing is opened before this is called."""
    settings = settings or Settings()
    if configure_logging:
        pj_logging.configure(settings.log_format, settings.log_level)
    store = resolve(settings.database)
    app = PingjingApp(
        env=store.env,
        # Contacts sealed with keys in the store's own database, wrapped by the configured master keys.
        personal=vault_for(store.env, settings),
        clock=clock,
        ids=ids,
        observers=[pj_logging.log_executed] if observers is None else observers,
        rating_window=timedelta(hours=settings.rating_window_hours),
    )
    return Runtime(settings=settings, store=store, app=app, policy=load_policy(settings.sla_policy))


def load_policy(path: Path | None) -> SlaPolicy:
    """The SLA policy from ``path``, or the defaults; a bad file is refused with its reason."""
    if path is None:
        return SlaPolicy.default()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise StoreConfigError(f"PINGJING_SLA_POLICY {path}: {error.strerror}") from None
    try:
        return SlaPolicy.from_toml(text)
    except ValidationError as error:
        raise StoreConfigError(f"PINGJING_SLA_POLICY {path}: {error}") from None
