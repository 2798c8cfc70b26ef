"""The master key: rotated with every citizen's key re-wrapped, and a wrong or missing one never read as erased."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eventsourcing.persistence import MapperDeserialisationError

from adapters.cli import main
from adapters.privacy.master import MasterKeyError, MasterKeys, PrivacyConfigError, new_master_key
from adapters.privacy.vault import Vault, vault_for
from adapters.qr.keys import encode_secret
from adapters.settings import Settings
from adapters.store import resolve
from domain.application import PingjingApp
from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore
from tests.conftest import County
from tests.fakes import FakeClock, SequentialIds
from tests.http.test_serve import ROOT
from tests.privacy.conftest import PHONE, open_with_contact

PHONES = (PHONE, "13700000001", "13700000002")


def _county(database: str, clock: FakeClock) -> tuple[County, list[str]]:
    """A county on ``database`` (the default vault: the process's settings) with three contacts."""
    app = PingjingApp(env=resolve(database).env, clock=clock, ids=SequentialIds(), observers=[])
    county = County(app, clock).setup()
    return county, [open_with_contact(county, phone=phone) for phone in PHONES]


def _phones(database: str, refs: list[str]) -> list[str | None]:
    """The phones of ``refs`` as a new process reads them."""
    app = PingjingApp(env=resolve(database).env, observers=[])
    try:
        return [app.get_case(ref).contact.phone for ref in refs]  # type: ignore[union-attr]
    finally:
        app.close()


def _status(database: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["--database", database, "privacy", "status", "--format", "json"]) == 0
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def test_rotating_the_key_file_rewraps_every_key_and_every_contact_still_opens(
    stored: str, clock: FakeClock, data_key_file: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    county, refs = _county(stored, clock)
    (old,) = MasterKeys(env_text=None, path=data_key_file).load()
    assert _status(stored, capsys)["keys_per_master_key"] == {old.kid: 3}

    assert main(["--database", stored, "privacy", "rotate-master-key"]) == 0

    out = capsys.readouterr().out
    (new,) = MasterKeys(env_text=None, path=data_key_file).load()
    assert new.kid != old.kid
    assert f"3 citizen keys re-wrapped; every key is wrapped by master key {new.kid} now" in out
    assert f"retired from the key file: {old.kid}" in out
    assert oct(data_key_file.stat().st_mode & 0o777) == "0o600"
    assert _status(stored, capsys)["keys_per_master_key"] == {new.kid: 3}
    assert _phones(stored, refs) == list(PHONES)
    # The process that ran all along follows the new file: a new citizen's key is wrapped by the new key.
    later = open_with_contact(county, phone="13700000003")
    assert _status(stored, capsys)["keys_per_master_key"] == {new.kid: 4}
    assert county.app.get_case(later).contact.phone == "13700000003"  # type: ignore[union-attr]
    county.app.close()
    # The old key alone opens nothing any more, and says so.
    monkeypatch.setenv("PINGJING_DATA_KEY", encode_secret(old.secret))
    with pytest.raises(MapperDeserialisationError) as refused:
        _phones(stored, refs)
    assert isinstance(refused.value.__cause__, MasterKeyError)
    assert f"wrapped by master key {new.kid}, which is not configured" in str(refused.value.__cause__)


def test_an_interrupted_rotation_is_finished_without_a_new_key(
    stored: str, clock: FakeClock, data_key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    county, refs = _county(stored, clock)
    county.app.close()
    masters = MasterKeys(env_text=None, path=data_key_file)
    (old,) = masters.load()
    new = new_master_key()
    masters.write_file((new, old))  # as a rotation leaves it when stopped half-way

    assert main(["--database", stored, "privacy", "rotate-master-key"]) == 0

    assert "a new master key" not in capsys.readouterr().out
    assert MasterKeys(env_text=None, path=data_key_file).ids() == [new.kid]
    assert _status(stored, capsys)["keys_per_master_key"] == {new.kid: 3}
    assert _phones(stored, refs) == list(PHONES)


def test_rotating_with_the_variable_rewraps_under_its_first_key(
    stored: str, clock: FakeClock, data_key_file: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = new_master_key(), new_master_key()
    monkeypatch.setenv("PINGJING_DATA_KEY", encode_secret(old.secret))
    county, refs = _county(stored, clock)
    county.app.close()
    monkeypatch.setenv("PINGJING_DATA_KEY", f"{encode_secret(new.secret)},{encode_secret(old.secret)}")

    assert main(["--database", stored, "privacy", "rotate-master-key"]) == 0

    assert f"drop {old.kid} from PINGJING_DATA_KEY now" in capsys.readouterr().out
    monkeypatch.setenv("PINGJING_DATA_KEY", encode_secret(new.secret))
    assert _status(stored, capsys)["keys_per_master_key"] == {new.kid: 3}
    assert _phones(stored, refs) == list(PHONES)
    assert not data_key_file.exists(), "with the variable, no key file is made"


def test_a_wrong_master_key_is_a_clear_error_not_an_erasure(
    stored: str, clock: FakeClock, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    county, refs = _county(stored, clock)
    county.app.close()
    monkeypatch.setenv("PINGJING_DATA_KEY", encode_secret(new_master_key().secret))

    assert main(["--database", stored, "case", "show", refs[0]]) == 2

    err = capsys.readouterr().err
    assert "which is not configured (PINGJING_DATA_KEY has" in err
    assert "Traceback" not in err
    assert _status(stored, capsys)["unreadable"] == 3


@pytest.mark.parametrize(
    "command",
    [["serve", "--port", "0", "--no-demo"], ["scheduler", "run"], ["projections", "run"],
     ["notifications", "run", "--interval", "60"]],
    ids=lambda command: " ".join(command[:2]),
)
def test_a_long_running_process_with_a_wrong_master_key_refuses_to_start(
    stored: str, clock: FakeClock, tmp_path: Path, command: list[str]
) -> None:
    """Before it serves or runs, not on the first request that reads a contact: the views are already
    caught up here, so nothing else it does at start would read one."""
    county, _ = _county(stored, clock)
    Runner(county.app, ViewStore.beside(county.app), ALL).catch_up()
    county.app.close()
    env = {**os.environ, "PINGJING_DATA_KEY": encode_secret(new_master_key().secret), "PYTHONPATH": str(ROOT)}

    refused = subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, "-m", "adapters.cli", "--database", stored, *command],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )

    assert refused.returncode == 2, refused.stderr
    assert "citizen keys in" in refused.stderr
    assert "which is not configured (PINGJING_DATA_KEY has" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "pingjing serve on" not in refused.stdout


def test_a_lost_key_file_is_not_replaced_while_keys_exist(
    stored: str, clock: FakeClock, data_key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    county, refs = _county(stored, clock)
    county.app.close()
    data_key_file.rename(data_key_file.with_name("moved-away"))

    with pytest.raises(MapperDeserialisationError) as refused:
        _phones(stored, refs)

    assert isinstance(refused.value.__cause__, MasterKeyError)
    assert "does not exist, yet" in str(refused.value.__cause__)
    assert "holds 3 citizen keys" in str(refused.value.__cause__)
    assert not data_key_file.exists(), "no new master key was made"
    data_key_file.with_name("moved-away").rename(data_key_file)
    assert _phones(stored, refs) == list(PHONES)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("not base64!", "not base64"),
        (encode_secret(bytes(range(16))), "at least 32 random bytes"),
        (encode_secret(bytes(range(48))), "exactly 32 random bytes"),
        ("A" * 43, "repeats a few byte values"),
    ],
)
def test_a_malformed_master_key_is_refused_with_its_reason(value: str, why: str, tmp_path: Path) -> None:
    vault = vault_for(resolve(str(tmp_path / "e.sqlite3")).env, Settings(data_key=value))
    assert isinstance(vault, Vault)
    with pytest.raises(PrivacyConfigError, match=why):
        vault.seal("CITIZEN1", b"{}")
    vault.close()


def test_the_key_file_is_made_once_private_and_beside_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PINGJING_DATA_KEY_FILE")
    database = tmp_path / "store" / "events.sqlite3"
    vault = vault_for(resolve(str(database)).env, Settings())
    assert isinstance(vault, Vault)
    sealed = vault.seal("CITIZEN1", b'{"phone": "1"}')
    key_file = database.parent / "data-key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert vault.open("CITIZEN1", sealed) == b'{"phone": "1"}'
    vault.close()
    key_file.chmod(0o644)
    other = vault_for(resolve(str(database)).env, Settings())
    assert isinstance(other, Vault)
    with pytest.raises(PrivacyConfigError, match="other users may read it"):
        other.open("CITIZEN1", sealed)
    other.close()
