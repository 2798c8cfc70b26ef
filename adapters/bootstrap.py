"""The one place where everything is built from settings; tests call it with fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters import logging as pj_logging
from adapters.settings import Settings
from adapters.store import Store, resolve
from domain.application import Observer, PingjingApp
from domain.clock import Clock, IdSource


@dataclass
class Runtime:
    """What a process runs on: its settings, its store and the application."""

    settings: Settings
    store: Store
    app: PingjingApp

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
        clock=clock,
        ids=ids,
        observers=[pj_logging.log_executed] if observers is None else observers,
    )
    return Runtime(settings=settings, store=store, app=app)
