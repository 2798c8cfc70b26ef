"""What every command module shares: exit codes, errors, formats, and views kept current."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable

from adapters.bootstrap import Runtime
from adapters.privacy.vault import Vault
from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore

EXIT_OK, EXIT_DOMAIN, EXIT_USAGE = 0, 1, 2

Handler = Callable[[Runtime, argparse.Namespace], int]


class UsageError(Exception):
    """The command line asks for something that cannot be done as asked."""


def add_format(parser: argparse.ArgumentParser, *choices: str) -> None:
    """``--format`` with ``table`` as the default."""
    parser.add_argument("--format", choices=choices or ("table", "json"), default="table", help="output format")


def check_keys(rt: Runtime) -> None:
    """Refuse to start a long-running process whose master keys do not open every citizen's key
    (a wrong or missing key file): a clear error now, not a failed request or a stalled follower later."""
    personal = rt.app.personal
    if isinstance(personal, Vault):
        personal.check()


def current_views(rt: Runtime) -> ViewStore:
    """The live views beside the events, caught up with the log before they are read."""
    views = ViewStore.beside(rt.app)
    Runner(rt.app, views, ALL, policy=rt.policy).catch_up()
    return views


def login_name() -> str:
    """The operating-system login of whoever runs the command (``cli`` when there is none), for ``--by`` defaults."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment
        return "cli"
    return "".join(ch for ch in name if ch.isalnum() or ch in "._-") or "cli"
