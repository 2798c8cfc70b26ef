"""The erasure of a citizen's personal data, as a fact in the case's history (DESIGN §7)."""

from __future__ import annotations

from typing import Any

from domain import commands as c
from domain.case import Case
from domain.ids import case_id
from domain.usecases.base import Receipt, Work


def erase_contact(w: Work, cmd: c.EraseContact) -> Receipt:
    """Record that the case's contact was erased: the citizen reference, the reason and who, no data.

    Deleting the citizen's key is what makes the data unreadable; ``adapters.privacy`` does it
    before running this, so a record never claims an erasure that did not happen. A second
    erasure of the same case is refused (:class:`~domain.personal.AlreadyErasedError`).
    """
    case = w.uow.get(Case, case_id(cmd.ref), "case", cmd.ref)
    case.erase_contact(cmd.reason, w.meta)
    citizen_ref = case.contact.citizen_ref if case.contact is not None else None
    return Receipt(cmd.name, case.id, case_ref=case.ref, state=case.state.value, extra={"citizen_ref": citizen_ref})


HANDLERS: dict[type[c.Command], Any] = {
    c.EraseContact: erase_contact,
}
