"""``pingjing qr``, run in-process on a SQLite file: codes, sheets, checks and keys (exit 0 ok, 1 refused, 2 usage)."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.qr import load_keyring, resolve_token
from adapters.qr.tokens import token_from_text
from adapters.settings import Settings
from domain import commands as c
from domain.application import PingjingApp
from tests.adapters.support import run_cli
from tests.conftest import ADMIN, County, make_app
from tests.fakes import FakeClock
from tests.qr.conftest import ISSUED

SCAN_URL = re.compile(r"^http://127\.0\.0\.1:8000/s/(k1\.[a-z][A-Z0-9-]+\.\d+\.[A-Za-z0-9_-]{22})$")


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Path:
    """A SQLite file holding the tiny county with its codes issued."""
    path = tmp_path / "county.sqlite3"
    app = make_app(str(path), clock)
    try:
        County(app, clock).setup()
        for subject, key in ISSUED:
            app.issue_qr(c.IssueQr.model_validate({"subject": subject, "key": key}), ADMIN)
    finally:
        app.close()
    return path


@pytest.fixture
def change(store: Path, clock: FakeClock) -> Callable[[c.Command], None]:
    """Run one more administrator command on the store."""

    def run(command: c.Command) -> None:
        app = make_app(str(store), clock)
        try:
            app.execute(command, ADMIN)
        finally:
            app.close()

    return run


@pytest.fixture
def cli(store: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``pingjing --database STORE ARGS``: the exit status, stdout and stderr."""

    def run(*args: str) -> tuple[int, str, str]:
        status = run_cli("--database", str(store), *args)
        out, err = capsys.readouterr()
        return status, out, err

    return run


def files(tmp_path: Path) -> list[str]:
    """Every file the commands wrote: codes, sheets and the key file, relative to the test directory."""
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() and "county" not in p.name)


def check(url: str, store: Path) -> str:
    """Whom a printed URL rates, checked with the key file's keys (the officer's or unit's name)."""
    app = PingjingApp(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    try:
        return resolve_token(app, load_keyring(Settings()), token_from_text(url)).name
    finally:
        app.close()


def test_an_officer_code_is_written_as_png_and_its_url_printed(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path, store: Path
) -> None:
    status, out, _ = cli("qr", "officer", "100102")
    assert status == 0
    url = out.splitlines()[0]
    assert SCAN_URL.match(url)
    assert "k1.o100102.1." in url
    image = tmp_path / "qr" / "officer-100102-v1.png"
    assert image.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"wrote {image}" in out
    assert check(url, store) == "李警官"
    key_file = tmp_path / "keys" / "qr-keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_the_next_run_reuses_the_key_file(cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    first = cli("qr", "officer", "100102")[1].splitlines()[0]
    key_file = (tmp_path / "keys" / "qr-keys.json").read_bytes()
    second = cli("qr", "officer", "100102")[1].splitlines()[0]
    assert first == second
    assert (tmp_path / "keys" / "qr-keys.json").read_bytes() == key_file


def test_a_unit_code_is_written_as_svg_where_asked(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path, store: Path
) -> None:
    target = tmp_path / "print" / "ps2.svg"
    status, out, _ = cli("qr", "unit", "ps2", "-o", str(target))
    assert status == 0
    assert target.read_bytes().startswith(b"<?xml")
    assert b"<svg" in target.read_bytes()
    assert check(out.splitlines()[0], store) == "青同派出所"
    (tmp_path / "dir").mkdir()
    assert cli("qr", "unit", "PS2", "--format", "svg", "-o", str(tmp_path / "dir"))[0] == 0
    assert (tmp_path / "dir" / "unit-PS2-v1.svg").is_file()


def test_the_code_points_at_the_public_url(
    cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGJING_PUBLIC_URL", "https://pj.lingshou.example/")
    assert cli("qr", "unit", "PS1")[1].startswith("https://pj.lingshou.example/s/k1.uPS1.1.")


def test_a_rotated_code_gets_a_new_file_and_the_old_url_is_refused(
    cli: Callable[..., tuple[int, str, str]], change: Callable[[c.Command], None], tmp_path: Path
) -> None:
    old = cli("qr", "officer", "100102")[1].splitlines()[0]
    change(c.RotateQr.model_validate({"subject": "officer", "key": "100102"}))
    status, out, _ = cli("qr", "officer", "100102")
    assert status == 0
    assert ".o100102.2." in out
    assert (tmp_path / "qr" / "officer-100102-v2.png").is_file()
    status, _, err = cli("qr", "verify", old)
    assert status == 1
    assert "This code was replaced; ask for the current one." in err
    status, out, _ = cli("qr", "verify", out.splitlines()[0], "--format", "json")
    assert status == 0
    assert '"version": 2' in out


def test_a_forged_url_is_refused_naming_no_one(cli: Callable[..., tuple[int, str, str]]) -> None:
    url = cli("qr", "officer", "100102")[1].splitlines()[0]
    status, out, err = cli("qr", "verify", url.replace(".o100102.", ".o100101."))
    assert status == 1
    assert out == ""
    assert "not issued by the bureau" in err
    assert "100101" not in err
    assert "100102" not in err


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ("officer", "999999"), "pingjing: unknown officer '999999'"),
        (None, ("unit", "NOPE"), "pingjing: unknown unit 'NOPE'"),
        (None, ("unit", "BUR"), "pingjing: unit BUR has no QR code: none was ever issued"),
        (None, ("officer", "1/2"), "pingjing: '1/2' is not a badge or unit code"),
        (
            c.RecordOfficerLeft(badge="100102", reason="retired"),
            ("officer", "100102"),
            "pingjing: officer 100102 has left",
        ),
        (
            c.RevokeQr.model_validate({"subject": "unit", "key": "PS1", "reason": "sign stolen"}),
            ("unit", "PS1"),
            "pingjing: the QR code of unit PS1 is revoked",
        ),
        (None, ("sheet", "NOPE"), "pingjing: unknown unit 'NOPE'"),
    ],
)
def test_bad_input_is_refused_with_exit_1_and_nothing_written(
    cli: Callable[..., tuple[int, str, str]],
    change: Callable[[c.Command], None],
    tmp_path: Path,
    setup: c.Command | None,
    args: tuple[str, ...],
    message: str,
) -> None:
    if setup is not None:
        change(setup)
    status, out, err = cli("qr", *args)
    assert status == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(message)
    assert files(tmp_path) == []


def test_an_officer_never_issued_a_code_is_refused(
    cli: Callable[..., tuple[int, str, str]], change: Callable[[c.Command], None], tmp_path: Path
) -> None:
    change(c.RegisterOfficer(badge="100109", officer_name="新民警", kind="police", unit_code="PS1"))
    status, _, err = cli("qr", "officer", "100109")
    assert status == 1
    assert "officer 100109 has no QR code: none was ever issued" in err
    assert files(tmp_path) == []


def test_a_format_that_contradicts_the_file_name_is_a_usage_error(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    status, _, err = cli("qr", "officer", "100102", "--format", "png", "-o", str(tmp_path / "x.svg"))
    assert status == 2
    assert "--format png but -o" in err
    assert cli("qr", "officer", "100102", "-o", str(tmp_path / "x.jpg"))[0] == 2
    assert files(tmp_path) == []


def test_malformed_keys_in_the_environment_stop_the_command(
    cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PINGJING_QR_KEYS", "k1:c2hvcnQ")
    status, out, err = cli("qr", "officer", "100102")
    assert status == 2
    assert out == ""
    assert err.startswith("pingjing: PINGJING_QR_KEYS: key 'k1': the secret is 5 bytes; at least 32")
    assert files(tmp_path) == []


def test_the_sheet_has_a_card_for_the_unit_and_each_officer_with_a_code(
    cli: Callable[..., tuple[int, str, str]], change: Callable[[c.Command], None], tmp_path: Path
) -> None:
    change(c.RegisterOfficer(badge="100109", officer_name="新民警", kind="police", unit_code="PS1"))
    status, out, _ = cli("qr", "sheet", "PS1")
    assert status == 0
    sheet = tmp_path / "qr" / "sheet-PS1.html"
    html = sheet.read_text(encoding="utf-8")
    assert f"wrote {sheet}: 4 codes (the unit and 3 officers)" in out
    assert "not on the sheet: officer 100109 (QR code never issued)" in out
    for name, badge in (("城关派出所所长", "100101"), ("李警官", "100102"), ("赵辅警", "F10103")):
        assert name in html
        assert badge in html
    assert "新民警" not in html
    assert html.count("<svg") == 4
    assert '<meta charset="utf-8">' in html


def test_the_sheet_of_a_unit_without_any_code_is_refused(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    status, _, err = cli("qr", "sheet", "BUR")
    assert status == 1
    assert "unit BUR has no active QR code and no officer with one" in err
    assert files(tmp_path) == []


def test_rotating_the_signing_key_keeps_old_codes_until_the_old_key_is_retired(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    old = cli("qr", "officer", "100102")[1].splitlines()[0]
    status, out, _ = cli("qr", "keys", "rotate")
    assert status == 0
    assert "k2 signs new codes from now on" in out
    new = cli("qr", "officer", "100102")[1].splitlines()[0]
    assert "/s/k2.o100102.1." in new
    assert cli("qr", "verify", old)[0] == 0
    _, listing, _ = cli("qr", "keys", "list")
    assert re.search(r"k2\s+│\s+signs and verifies", listing)
    assert re.search(r"k1\s+│\s+verifies", listing)
    assert cli("qr", "keys", "retire", "k1")[0] == 0
    status, _, err = cli("qr", "verify", old)
    assert status == 1
    assert "not issued by the bureau" in err
    assert cli("qr", "verify", new)[0] == 0


def test_keys_from_the_environment_are_not_rotated_by_the_command(
    cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PINGJING_QR_KEYS", "k3:" + "MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0dXY")
    status, _, err = cli("qr", "keys", "rotate")
    assert status == 2
    assert "the QR keys come from PINGJING_QR_KEYS" in err
    _, listing, _ = cli("qr", "keys", "list")
    assert "PINGJING_QR_KEYS" in listing
    assert "MDEy" not in listing
    assert "/s/k3.o100102.1." in cli("qr", "officer", "100102")[1]
    assert not (tmp_path / "keys").exists()
