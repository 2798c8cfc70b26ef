"""How the domain's value objects are stored inside events (JSON)."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain.values import Contact, Meta


class MetaAsDict(Transcoding):
    """:class:`Meta` as a small JSON object."""

    type = Meta
    name = "meta"

    def encode(self, obj: Meta) -> dict[str, str]:
        """Store the metadata fields as strings."""
        return obj.as_dict()

    def decode(self, data: dict[str, str]) -> Meta:
        """Read them back."""
        return Meta.from_dict(data)


class ContactAsDict(Transcoding):
    """:class:`Contact` as a small JSON object."""

    type = Contact
    name = "contact"

    def encode(self, obj: Contact) -> dict[str, Any]:
        """Store the contact fields."""
        return {"citizen_ref": obj.citizen_ref, "phone": obj.phone, "name": obj.name}

    def decode(self, data: dict[str, Any]) -> Contact:
        """Read them back."""
        return Contact(citizen_ref=data["citizen_ref"], phone=data["phone"], name=data["name"])


def register(transcoder: JSONTranscoder) -> None:
    """Register the domain's transcodings."""
    transcoder.register(MetaAsDict())
    transcoder.register(ContactAsDict())
