"""How the domain's value objects are stored inside events (JSON), and how they are read back fast.

Replaying the log decodes every event again, so reading is tuned: orjson parses, typed
values are restored in one walk, the values that recur from event to event (the ids of
units and officers, a moment stored twice in one event) are shared rather than parsed
again, and :class:`EventDecoder` builds domain events straight from database rows.
Writing is tuned too, and the stored bytes stay the library's JSON format:
:class:`FastJSONTranscoder` writes them with orjson after one walk over the typed values.

A citizen's contact is the one value written sealed: :class:`ContactAsDict` seals its phone
and name with the citizen's own key (:mod:`domain.personal`) and opens them on every read,
the fast decoder's included, so an erased key reads as an erased contact everywhere.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Hashable
from datetime import datetime, timezone
from typing import Any, TypeVar, cast

import orjson
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoding,
    TranscodingNotRegisteredError,
    find_id_convertor,
    str_to_uuid_convertor,
)
from eventsourcing.utils import resolve_topic

from domain.personal import InMemoryPersonalData, PersonalData
from domain.values import Channel, Contact, Meta, Role

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: How many recently read values each cache keeps (it starts again when full).
CACHE_SIZE = 4096


class _Recent(dict[K, V]):
    """Values recently read, by their stored form; emptied when full, so it stays small."""

    def put(self, key: K, value: V) -> V:
        if len(self) >= CACHE_SIZE:
            self.clear()
        self[key] = value
        return value


_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


class FastUUIDAsHex(Transcoding):
    """The library's ``uuid_hex`` encoding, decoded without re-validating what it wrote.

    Ids recur (every rating names its unit and officer), so recent ones are shared: a UUID
    is immutable.
    """

    type = uuid.UUID
    name = "uuid_hex"

    def __init__(self) -> None:
        self.recent: _Recent[str, uuid.UUID] = _Recent()

    def encode(self, obj: uuid.UUID) -> str:
        """32 hex digits, as the library writes them."""
        return obj.hex

    def decode(self, data: str) -> uuid.UUID:
        """A UUID from 32 hex digits (int() refuses anything that is not hexadecimal)."""
        known = self.recent.get(data)
        if known is not None:
            return known
        value = _new(uuid.UUID)
        _set(value, "int", int(data, 16))
        _set(value, "is_safe", _UNKNOWN)
        return self.recent.put(data, value)


#: One instance per UTC offset read: datetimes compare several times faster when their tzinfo
#: is the same object (and ``fromisoformat`` makes a new one for each string it reads).
_ZONES: dict[timezone, timezone] = {}


_from_iso = datetime.fromisoformat


def read_moment(text: str) -> datetime:
    """``datetime.fromisoformat(text)``, its fixed UTC offset shared with every other moment read."""
    value = _from_iso(text)
    zone = value.tzinfo
    if type(zone) is timezone:
        shared = _ZONES.setdefault(zone, zone)
        if shared is not zone:
            # The constructor with positional arguments: several times cheaper than ``replace(tzinfo=)``.
            # (A fixed offset has no repeated hour: ``fold`` is 0.)
            return datetime(
                value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, shared
            )
    return value


class CachedDatetimeAsISO(Transcoding):
    """The library's ``datetime_iso`` encoding; a moment stored twice in a row is parsed once.

    An event stores its ``timestamp`` and its ``meta.occurred_at`` as the same text, and
    events of one command share it. A datetime is immutable, so sharing is safe. The
    offsets are shared too (:func:`read_moment`).
    """

    type = datetime
    name = "datetime_iso"

    def __init__(self) -> None:
        self.recent: _Recent[str, datetime] = _Recent()

    def encode(self, obj: datetime) -> str:
        """ISO 8601, as the library writes it."""
        return obj.isoformat()

    def decode(self, data: str) -> datetime:
        """The moment ``data`` names."""
        known = self.recent.get(data)
        if known is not None:
            return known
        return self.recent.put(data, read_moment(data))


_ROLES: dict[str, Role] = {role.value: role for role in Role}
_CHANNELS: dict[str, Channel] = {channel.value: channel for channel in Channel}


class MetaAsDict(Transcoding):
    """:class:`Meta` as a small JSON object."""

    type = Meta
    name = "meta"
    #: Its stored data are plain strings: nothing inside to restore.
    flat = True

    def __init__(self, moments: CachedDatetimeAsISO | None = None) -> None:
        self.moments = moments or CachedDatetimeAsISO()

    def encode(self, obj: Meta) -> dict[str, str]:
        """Store the metadata fields as strings."""
        return obj.as_dict()

    def decode(self, data: dict[str, str]) -> Meta:
        """Read them back (as :meth:`Meta.from_dict`, with the enumerations looked up directly)."""
        role, channel = data["role"], data["channel"]
        return Meta(
            data["actor"],
            _ROLES[role] if role in _ROLES else Role(role),
            self.moments.decode(data["occurred_at"]),
            _CHANNELS[channel] if channel in _CHANNELS else Channel(channel),
            data["correlation_id"],
        )


class ContactAsDict(Transcoding):
    """:class:`Contact` as a small JSON object, its phone and name sealed with the citizen's key.

    Stored as ``{"citizen_ref": REF, "sealed": TEXT}``, where ``TEXT`` is what
    :meth:`PersonalData.seal` made of ``{"phone": ..., "name": ...}``: the citizen reference
    stays readable (it is a pseudonym, and it names the key), the data do not. Reading opens
    the seal; a citizen whose key was erased reads as :meth:`Contact.erased_for`. Contacts
    stored before sealing (``{"citizen_ref", "phone", "name"}`` in clear) still read as they
    were: the log is never rewritten. An erased contact, should one be written, is stored as
    ``{"citizen_ref": REF, "erased": true}``.
    """

    type = Contact
    name = "contact"
    #: Its stored data are plain strings: nothing inside to restore.
    flat = True

    def __init__(self, personal: PersonalData | None = None) -> None:
        #: Seals and opens; by default an in-memory one (a transcoder of its own, a test).
        self.personal: PersonalData = personal if personal is not None else InMemoryPersonalData()

    def encode(self, obj: Contact) -> dict[str, Any]:
        """The citizen reference, and the phone and name sealed with the citizen's key."""
        if obj.erased:
            return {"citizen_ref": obj.citizen_ref, "erased": True}
        plaintext = orjson.dumps({"phone": obj.phone, "name": obj.name})
        return {"citizen_ref": obj.citizen_ref, "sealed": self.personal.seal(obj.citizen_ref, plaintext)}

    def decode(self, data: dict[str, Any]) -> Contact:
        """The contact, opened; erased when the citizen's key is gone."""
        citizen_ref: str = data["citizen_ref"]
        sealed = data.get("sealed")
        if sealed is None:
            if data.get("erased"):
                return Contact.erased_for(citizen_ref)
            return Contact(citizen_ref=citizen_ref, phone=data["phone"], name=data["name"])  # stored in clear
        opened = self.personal.open(citizen_ref, sealed)
        if opened is None:
            return Contact.erased_for(citizen_ref)
        fields = orjson.loads(opened)
        return Contact(citizen_ref=citizen_ref, phone=fields["phone"], name=fields["name"])


def register(transcoder: JSONTranscoder, personal: PersonalData | None = None) -> None:
    """Register the domain's transcodings (and faster readers of ids and moments in place of the library's).

    ``personal`` seals and opens contacts (:class:`ContactAsDict`).
    """
    moments = CachedDatetimeAsISO()
    transcoder.register(FastUUIDAsHex())
    transcoder.register(moments)
    transcoder.register(MetaAsDict(moments))
    transcoder.register(ContactAsDict(personal))


class _NotPlainError(Exception):
    """A value the fast encoder leaves to the library's (which writes it, or names what is wrong)."""


#: What the standard library's JSON encoder writes itself, subclasses included (``bool`` is an ``int``).
_JSON_SCALARS = (str, int, float)
_CONTAINERS = (dict, list, tuple)
_isfinite = math.isfinite


class FastJSONTranscoder(JSONTranscoder):
    """The library's JSON format, written and read with orjson: the same bytes, read about twice as
    fast and written for about 40 % less.

    Encoding turns every typed value into the library's ``{"_type_", "_data_"}`` object in one
    walk, as the library's encoder would call its ``default`` for it, and orjson writes the
    result. Anything the walk or orjson cannot write exactly as the library would (a type with
    no transcoding, an integer beyond 64 bits, a key that is not text) is handed to the
    library's encoder, which writes it or names what is wrong. Not a number and the infinities
    are refused: they are not JSON, and no reader of the log could read them back.

    Decoding parses with orjson and restores the typed objects in place, in one walk.
    """

    def __init__(self) -> None:
        super().__init__()
        # name -> (decode, whether its stored data can hold typed values to restore first)
        self.decoders: dict[str, tuple[Callable[[Any], Any], bool]] = {}
        # type -> (name, encode, whether its stored data can hold typed values to write first)
        self.encoders: dict[type, tuple[str, Callable[[Any], Any], bool]] = {}
        for transcoding in self.names.values():
            self._add(transcoding)

    def register(self, transcoding: Transcoding) -> None:
        """Register ``transcoding`` (replacing one of the same name)."""
        super().register(transcoding)
        self._add(transcoding)

    def _add(self, transcoding: Transcoding) -> None:
        nested = not getattr(transcoding, "flat", False)
        self.decoders[transcoding.name] = (transcoding.decode, nested)
        self.encoders[transcoding.type] = (transcoding.name, transcoding.encode, nested)

    def encode(self, obj: Any) -> bytes:
        """``obj`` as the library's JSON format, in UTF-8."""
        try:
            return orjson.dumps(self._plain(obj))
        except (_NotPlainError, orjson.JSONEncodeError):
            return super().encode(obj)

    def _plain(self, obj: Any) -> Any:  # noqa: PLR0911 - one return for each kind of value
        """``obj`` with its typed values in their stored form: only what the standard library's
        encoder writes itself is left (it is the hot path of every write)."""
        kind = type(obj)
        if kind is dict:
            out = {}
            plain = self._plain
            for key, value in obj.items():
                kind = type(value)
                if kind is str or value is None or kind is int or kind is bool:
                    out[key] = value
                else:
                    out[key] = plain(value)
            return out
        if kind is str or obj is None or kind is int or kind is bool:
            return obj
        if kind is float:
            if not _isfinite(obj):
                raise ValueError(f"{obj!r} cannot be stored: it is not a JSON number")
            return obj
        if kind is list or kind is tuple:
            return [self._plain(value) for value in obj]
        known = self.encoders.get(kind)
        if known is not None and not isinstance(obj, _JSON_SCALARS):
            name, encode, nested = known
            data = encode(obj)
            return {"_type_": name, "_data_": self._plain(data) if nested else data}
        if isinstance(obj, _CONTAINERS):  # a subclass of a container: its items are walked too
            return self._plain(dict(obj) if isinstance(obj, dict) else list(obj))
        if isinstance(obj, _JSON_SCALARS) and not isinstance(obj, float):
            return obj  # a subclass of str or int (an enumeration's member): written as its value
        raise _NotPlainError

    def decode(self, data: bytes) -> Any:
        """Parse ``data`` and restore every typed value."""
        obj = orjson.loads(data)
        return self._restore(obj) if type(obj) is dict or type(obj) is list else obj

    def _restore(self, obj: Any) -> Any:
        # Only containers are visited: most values are plain strings and numbers.
        if type(obj) is list:
            return [self._restore(v) if type(v) is dict or type(v) is list else v for v in obj]
        if len(obj) == 2 and "_type_" in obj and "_data_" in obj:
            try:
                transcoding = self.names[obj["_type_"]]
            except KeyError:
                msg = f"Data serialized with name {obj['_type_']!r} is not deserializable."
                raise TranscodingNotRegisteredError(msg) from None
            data = obj["_data_"]
            if type(data) is dict or type(data) is list:
                data = self._restore(data)
            return transcoding.decode(data)
        decoders = self.decoders
        for key, value in obj.items():
            kind = type(value)
            if kind is dict:
                # Typed values are restored here rather than in a call of their own: most events
                # hold several (ids, times, metadata), and this loop is the hot path of every replay.
                name = value.get("_type_")
                if name is not None and len(value) == 2 and name in decoders:
                    decode, nested = decoders[name]
                    data = value["_data_"]
                    if nested and (type(data) is dict or type(data) is list):
                        data = self._restore(data)
                    obj[key] = decode(data)
                else:
                    obj[key] = self._restore(value)
            elif kind is list:
                obj[key] = self._restore(value)
        return obj


class EventDecoder:
    """Domain events straight from stored rows: what :meth:`Mapper.to_domain_event` returns, for less.

    The mapper wants a :class:`~eventsourcing.persistence.StoredEvent` object per row and
    resolves the topic and the id type on every call; this decoder takes the row's columns
    as they come from the database and does that work once per topic. Old versions of an
    event class are upcast as the mapper does (``upcast_vN_vN+1``). With a cipher or a
    compressor configured, every row goes through the mapper itself. A contact is opened by
    the same :class:`ContactAsDict` as the mapper's (its transcoder is the mapper's), so a
    citizen whose key was erased reads as erased here too.

    ``text_ids_are_uuids``: the rows give ids as text that the recorder would have turned
    into UUIDs (SQLite's default); otherwise text ids are read as the event class declares.
    """

    def __init__(self, mapper: Mapper[Any], *, text_ids_are_uuids: bool = False) -> None:
        self.mapper = mapper
        self.text_ids_are_uuids = text_ids_are_uuids
        self.plain = not mapper.cipher and not mapper.compressor
        self.json = self.plain and isinstance(mapper.transcoder, JSONTranscoder)
        self.ids: _Recent[str, uuid.UUID] = _Recent()
        self.decode_state = mapper.transcoder.decode
        # Per topic: the event class, its version, and how to read a stored id that is text.
        self.classes: dict[str, tuple[type[Any], int, Callable[[str], Any]]] = {}

    def __call__(self, topic: str, originator_id: uuid.UUID | str, originator_version: int, state: bytes) -> Any:
        """The domain event of one stored row."""
        if type(originator_id) is str and self.text_ids_are_uuids:
            # An aggregate's events come one after another: its id is read once for them all.
            text = originator_id
            originator_id = self.ids.get(text) or self.ids.put(text, _uuid_of_text(text))
        if not self.plain:
            return self.mapper.to_domain_event(StoredEvent(originator_id, originator_version, topic, bytes(state)))
        known = self.classes.get(topic)
        if known is None:
            known = self.classes[topic] = self._plan(topic)
        cls, class_version, text_id = known
        event_state: dict[str, Any] = self.decode_state(state)
        event_state["originator_id"] = text_id(originator_id) if type(originator_id) is str else originator_id
        event_state["originator_version"] = originator_version
        if class_version != 1 or "class_version" in event_state:
            from_version = event_state.pop("class_version", 1)
            while from_version < class_version:
                getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
                from_version += 1
        event = _new(cls)
        _set(event, "__dict__", event_state)
        return event

    def fields(self, topic: str, state: bytes) -> dict[str, Any] | None:
        """A row's stored fields, parsed, with typed values left as stored (``{"_type_", "_data_"}``).

        For a reader that needs a few fields, not the event. None when the row has to be
        decoded as an event: stored by an older version of its class (to upcast), or not
        plain JSON (a cipher, a compressor, another transcoder).
        """
        if not self.json:
            return None
        known = self.classes.get(topic)
        if known is None:
            known = self.classes[topic] = self._plan(topic)
        fields: dict[str, Any] = orjson.loads(state)
        if fields.pop("class_version", 1) != known[1]:
            return None
        return fields

    @staticmethod
    def _plan(topic: str) -> tuple[type[Any], int, Callable[[str], Any]]:
        cls = resolve_topic(topic)
        convert = find_id_convertor(cast(Hashable, cls), str)
        return cls, getattr(cls, "class_version", 1), _uuid_of_text if convert is str_to_uuid_convertor else convert


def _uuid_of_text(text: str) -> uuid.UUID:
    """``uuid.UUID(text)``; 32 hex digits (as SQLite stores ids) without the parsing."""
    if len(text) == 32 and text.isalnum():
        value = _new(uuid.UUID)
        _set(value, "int", int(text, 16))
        _set(value, "is_safe", _UNKNOWN)
        return value
    return uuid.UUID(text)


def stored(value: Any, name: str) -> Any:
    """The stored data of a typed value (``{"_type_": name, "_data_": ...}``), its type checked."""
    if value["_type_"] != name:
        msg = f"expected a stored {name}, got {value['_type_']!r}"
        raise TypeError(msg)
    return value["_data_"]


def stored_moment(value: Any) -> datetime:
    """The datetime of a stored ``datetime_iso``."""
    if value["_type_"] != "datetime_iso":
        msg = f"expected a stored datetime, got {value['_type_']!r}"
        raise TypeError(msg)
    return read_moment(value["_data_"])


def stored_occurred_at(fields: dict[str, Any]) -> datetime:
    """``meta.occurred_at`` of an event's stored fields (see :class:`MetaAsDict`)."""
    meta = fields["meta"]
    if meta["_type_"] != MetaAsDict.name:
        msg = f"expected stored metadata, got {meta['_type_']!r}"
        raise TypeError(msg)
    return read_moment(meta["_data_"]["occurred_at"])


def hex_of(originator_id: uuid.UUID | str) -> str:
    """An id as 32 lower-case hex digits (``UUID.hex``), from a UUID or from its text in a row."""
    if type(originator_id) is str:
        if len(originator_id) == 32 and originator_id.isalnum():
            return originator_id.lower()
        return uuid.UUID(originator_id).hex
    return cast(uuid.UUID, originator_id).hex


def text_of_hex(digits: str) -> str:
    """``str(UUID)`` of 32 hex digits: the dashed form."""
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
