"""``pingjing audit verify`` against a tamperer: every kind of rewrite is named at its position.

Each test writes a short history (the county, ratings, a seal, more ratings) into a SQLite
file and into a fresh PostgreSQL schema, rewrites rows with plain SQL, and asks the command
line what it finds.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from adapters.audit.seals import chain_head
from tests.adapters.support import run_cli
from tests.audit.conftest import Raw, Story, tell
from tests.conftest import make_app
from tests.fakes import FakeClock

RATING = "domain.ratings:Rating.Submitted"
PUSHED = "domain.case:Case.Pushed"
SEALED = "domain.seals:LogSeal.Sealed"


def audit(database: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    """``audit verify --format json`` with ``extra``: the exit status and the result."""
    code = run_cli("--database", database, "audit", "verify", "--format", "json", *extra)
    return code, json.loads(capsys.readouterr().out)


def problem(database: str, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    """The problem ``audit verify`` names (it must exit 1)."""
    code, result = audit(database, capsys, *extra)
    assert code == 1, result
    assert result["intact"] is False
    found: dict[str, Any] = result["problem"]
    return found


# -- an intact log ---------------------------------------------------------------------------------------


def test_an_intact_log_passes_and_prints_the_head_and_its_hash(
    story: Story, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(story.database, clock)
    try:
        head = chain_head(app)
    finally:
        app.close()
    assert head is not None
    assert head[0] == story.head

    assert run_cli("--database", story.database, "audit", "verify") == 0
    out = capsys.readouterr().out
    assert "audit verify: intact" in out
    assert head[1] in out

    code, result = audit(story.database, capsys)
    assert code == 0
    assert (result["intact"], result["events"], result["head_position"], result["head_hash"]) == (
        True, story.head, story.head, head[1],
    )
    assert result["seals"] == 1  # the story's seal was checked against the chain


def test_a_memory_store_has_no_chain_to_verify(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--database", "memory", "audit", "verify") == 2
    assert "memory store keeps no chain" in capsys.readouterr().err


# -- rows rewritten ------------------------------------------------------------------------------------------


def test_an_altered_event_is_named_changed_at_its_position(
    story: Story, raw: Raw, capsys: pytest.CaptureFixture[str]
) -> None:
    position = raw.position_of(RATING, 2)  # the third rating: satisfied
    oid, version, _, state = raw.row(position)
    assert b'"verdict":"satisfied"' in state
    raw.set_state(position, state.replace(b'"verdict":"satisfied"', b'"verdict":"dissatisfied"'))

    found = problem(story.database, capsys)

    assert (found["kind"], found["position"]) == ("changed", position)
    assert (found["aggregate_id"], found["event_type"], found["version"]) == (oid, "Rating.Submitted", version)
    assert "no longer matches its recorded hash" in found["summary"]
    assert found["expected"].startswith("event hash ")
    assert found["found"].startswith("content hashing to ")


def test_a_deleted_event_is_named_deleted_at_its_position(
    story: Story, raw: Raw, capsys: pytest.CaptureFixture[str]
) -> None:
    position = raw.position_of(PUSHED, 0)
    raw.delete(position)

    found = problem(story.database, capsys)

    assert (found["kind"], found["position"]) == ("deleted", position)
    assert "the events table has none" in found["summary"]


def test_an_event_deleted_together_with_its_chain_row_is_named_deleted(
    story: Story, raw: Raw, capsys: pytest.CaptureFixture[str]
) -> None:
    position = raw.position_of(RATING, 1)
    raw.delete(position)
    raw.delete_chain(position)

    found = problem(story.database, capsys)

    assert (found["kind"], found["position"]) == ("deleted", position)
    assert "together with its chain row" in found["summary"]


def test_an_inserted_event_is_named_inserted_at_its_position(
    story: Story, raw: Raw, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, topic, state = raw.row(raw.position_of(RATING, 0))
    forged = uuid.uuid4().hex
    position = raw.insert(forged, 1, topic, state)
    assert position > story.head

    found = problem(story.database, capsys)

    assert (found["kind"], found["position"]) == ("inserted", position)
    assert (found["aggregate_id"], found["event_type"]) == (forged, "Rating.Submitted")
    assert f"the chain ends at position {story.head}" in found["summary"]


def test_two_swapped_events_are_named_moved_at_the_first_position(
    story: Story, raw: Raw, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = raw.position_of(RATING, 0), raw.position_of(RATING, 3)
    moved_oid = raw.row(second)[0]
    raw.swap(first, second)

    found = problem(story.database, capsys)

    assert (found["kind"], found["position"]) == ("moved", first)
    assert found["aggregate_id"] == moved_oid
    assert f"records at position {second}" in found["summary"]
    assert f"the event of position {second}" in found["found"]


# -- the chain table itself ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        ("chain_hash", "does not follow from position"),
        ("event_hash", "its event hash column changed"),
        ("removed", "was removed from the chain table"),
    ],
)
def test_tampering_with_the_chain_table_is_named(
    story: Story, raw: Raw, capsys: pytest.CaptureFixture[str], tamper: str, words: str
) -> None:
    position = raw.position_of(PUSHED, 1)
    if tamper == "removed":
        raw.delete_chain(position)
    else:
        raw.set_chain(position, tamper, bytes(32))

    found = problem(story.database, capsys)

    assert (found["kind"], found["position"]) == ("chain", position)
    assert words in found["summary"]
    assert found["event_type"] == "Case.Pushed"


# -- seals and hashes from outside ---------------------------------------------------------------------------


def test_a_rewrite_with_the_chain_recomputed_breaks_the_seal(
    story: Story, raw: Raw, capsys: pytest.CaptureFixture[str]
) -> None:
    position = raw.position_of(RATING, 0)
    assert position < story.seal.position
    _, _, _, state = raw.row(position)
    raw.set_state(position, state.replace(b'"verdict":"satisfied"', b'"verdict":"dissatisfied"'))
    raw.rechain()  # every row and chain hash consistent again: only the seal remembers

    found = problem(story.database, capsys)

    assert (found["kind"], found["position"]) == ("seal", story.seal.position)
    assert f"the seal recorded at position {story.seal.recorded_at}" in found["summary"]
    assert found["expected"] == f"chain hash {story.seal.chain_hash}"


def test_an_altered_seal_is_named_as_the_changed_event(
    story: Story, raw: Raw, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, topic, state = raw.row(story.seal.recorded_at)
    assert topic == SEALED
    raw.set_state(story.seal.recorded_at, state.replace(story.seal.chain_hash.encode(), b"0" * 64))

    found = problem(story.database, capsys)

    assert (found["kind"], found["position"], found["event_type"]) == ("changed", story.seal.recorded_at,
                                                                        "LogSeal.Sealed")


def test_a_hash_kept_outside_catches_a_rewrite_of_the_log_and_its_seals(
    story: Story, raw: Raw, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whoever rewrites history, the chain and the seal inside the log is still caught by a printed hash."""
    position = raw.position_of(RATING, 0)
    _, _, _, state = raw.row(position)
    raw.set_state(position, state.replace(b'"verdict":"satisfied"', b'"verdict":"dissatisfied"'))
    raw.rechain()
    forged = raw.run("SELECT chain_hash FROM {chain} WHERE position = ?", (story.seal.position,))[0][0]
    _, _, _, seal_state = raw.row(story.seal.recorded_at)
    forged_seal = seal_state.replace(story.seal.chain_hash.encode(), bytes(forged).hex().encode())
    raw.set_state(story.seal.recorded_at, forged_seal)
    raw.rechain()

    code, _ = audit(story.database, capsys)
    assert code == 0, "a complete rewrite is consistent in itself"
    found = problem(story.database, capsys, "--expect", story.seal.expect)
    assert (found["kind"], found["position"]) == ("expect", story.seal.position)
    assert found["expected"] == f"chain hash {story.seal.chain_hash}"


def test_expect_accepts_the_right_hash_and_refuses_a_wrong_one(
    story: Story, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = audit(story.database, capsys)
    head, digest = result["head_position"], result["head_hash"]

    code, result = audit(story.database, capsys, "--expect", f"{head}:{digest}", "--expect", story.seal.expect)
    assert (code, result["expectations"]) == (0, 2)

    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    found = problem(story.database, capsys, "--expect", f"{head}:{wrong}")
    assert (found["kind"], found["position"], found["found"]) == ("expect", head, f"chain hash {digest}")

    found = problem(story.database, capsys, "--expect", f"{head + 5}:{digest}")
    assert (found["kind"], found["position"]) == ("expect", head + 5)
    assert f"the log ends at {head}" in found["found"]

    assert run_cli("--database", story.database, "audit", "verify", "--expect", "12:nothex") == 2
    assert "64 hexadecimal digits" in capsys.readouterr().err


def test_from_trusts_the_stored_chain_before_the_position(
    story: Story, raw: Raw, capsys: pytest.CaptureFixture[str]
) -> None:
    position = raw.position_of(RATING, 1)
    _, _, _, state = raw.row(position)
    raw.set_state(position, state + b" ")

    code, result = audit(story.database, capsys, "--from", str(position + 1))
    assert code == 0
    assert (result["start"], result["events"], result["head_position"]) == (
        position + 1, story.head - position, story.head,
    )
    found = problem(story.database, capsys, "--from", str(position))
    assert (found["kind"], found["position"]) == ("changed", position)
    assert run_cli("--database", story.database, "audit", "verify", "--from", "0") == 2


def test_a_value_of_the_wrong_type_is_a_change(
    tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    story = tell(str(tmp_path / "events.sqlite3"), clock)
    raw = Raw(story.database)
    position = raw.position_of(RATING, 0)
    raw.run("UPDATE {events} SET state = NULL WHERE {pos} = ?", (position,))

    found = problem(story.database, capsys)

    assert (found["kind"], found["position"]) == ("changed", position)
