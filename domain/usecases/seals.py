"""Sealing the log: record the chain hash the adapter read at a position."""

from __future__ import annotations

from typing import Any

from domain import commands as c
from domain.errors import AlreadyExistsError
from domain.seals import LogSeal, seal_id
from domain.usecases.base import Receipt, Work


def seal_log(w: Work, cmd: c.SealLog) -> Receipt:
    """Record a seal of ``cmd.position``; a position is sealed once."""
    if w.uow.exists(seal_id(cmd.position)):
        raise AlreadyExistsError("log seal of position", str(cmd.position))
    seal = LogSeal(position=cmd.position, chain_hash=cmd.chain_hash, meta=w.meta)
    w.uow.add(seal)
    return Receipt(cmd.name, seal.id, extra={"position": cmd.position, "chain_hash": cmd.chain_hash})


HANDLERS: dict[type[c.Command], Any] = {c.SealLog: seal_log}
