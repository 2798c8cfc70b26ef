"""Signing keys from PINGJING_QR_KEYS or the key file: parsed, refused when weak or malformed, rotated."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from adapters.qr import QrConfigError, load_keyring, parse_keys
from adapters.qr.keys import _create, load_key_file, new_key, retire_key, rotate_key_file
from adapters.settings import Settings
from tests.qr.conftest import keyring, signing_key

SECRET_1 = signing_key("k1").secret
SECRET_2 = signing_key("k2").secret


def b64(secret: bytes, *, urlsafe: bool = True, padded: bool = False) -> str:
    """``secret`` in one of the base64 forms an operator may paste."""
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(secret).decode()
    return text if padded else text.rstrip("=")


def mode(path: Path) -> int:
    """The file's permission bits."""
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_from_the_environment_put_the_first_one_in_charge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGJING_QR_KEYS", f" k2:{b64(SECRET_2)} , k1:{b64(SECRET_1, urlsafe=False, padded=True)},")
    ring = load_keyring(Settings())
    assert [k.kid for k in ring.keys] == ["k2", "k1"]
    assert ring.active.kid == "k2"
    assert ring.get("k1") is not None
    assert ring.get("k1").secret == SECRET_1  # type: ignore[union-attr]
    assert ring.source == "PINGJING_QR_KEYS"


def test_the_secrets_never_show_in_a_repr_or_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGJING_QR_KEYS", f"k1:{b64(SECRET_1)}")
    settings = Settings()
    ring = load_keyring(settings)
    assert b64(SECRET_1) not in repr(settings)
    assert b64(SECRET_1) not in repr(ring)
    assert str(SECRET_1) not in repr(ring)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{b64(SECRET_1)}", "entry 1 has no ':'"),
        (f"k1:{b64(SECRET_1)},{b64(SECRET_2)}", "entry 2 has no ':'"),
        (f"K1:{b64(SECRET_1)}", "key id 'K1' must be 1-8 lower-case letters or digits"),
        (f"key-one:{b64(SECRET_1)}", "key id 'key-one' must be"),
        (f"averylongid:{b64(SECRET_1)}", "key id 'averylongid' must be"),
        ("k1:not base64!", "key 'k1': the secret is not base64"),
        ("k1:", "key 'k1': the secret is not base64"),
        (f"k1:{b64(b'0123456789abcdef')}", "key 'k1': the secret is 16 bytes; at least 32"),
        (f"k1:{b64(bytes(40))}", "key 'k1': the secret repeats a few byte values (1 distinct in 40 bytes)"),
        (f"k1:{b64(b'ab' * 20)}", "key 'k1': the secret repeats a few byte values (2 distinct"),
        (f"k1:{b64(SECRET_1)},k1:{b64(SECRET_2)}", "key id 'k1' appears twice"),
        (f"k2:{b64(SECRET_1)},k1:{b64(SECRET_1)}", "keys 'k2' and 'k1' have the same secret"),
        (",", "no key"),
    ],
)
def test_malformed_or_weak_keys_are_refused_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("PINGJING_QR_KEYS", value)
    with pytest.raises(QrConfigError) as refused:
        load_keyring(Settings())
    message = str(refused.value)
    assert message.startswith("PINGJING_QR_KEYS: ")
    assert expected in message
    for secret in (SECRET_1, SECRET_2):
        assert b64(secret) not in message


def test_a_blank_variable_means_the_key_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PINGJING_QR_KEYS", "  ")
    ring = load_keyring(Settings())
    assert ring.path == tmp_path / "keys" / "qr-keys.json"


def test_the_key_file_is_made_on_first_use_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "var" / "qr-keys.json"
    first = load_keyring(Settings(qr_key_file=path))
    assert path.is_file()
    assert mode(path) == 0o600
    assert [k.kid for k in first.keys] == ["k1"]
    assert len(first.active.secret) == 32
    again = load_keyring(Settings(qr_key_file=path))
    assert again.active.secret == first.active.secret
    assert again.active.created_at == first.active.created_at
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "qr-keys.json"
    load_key_file(path)
    path.chmod(0o644)
    with pytest.raises(QrConfigError, match=r"other users may read it \(mode 0644\); chmod 600"):
        load_key_file(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{", "not JSON"),
        ('{"keys": {}}', 'a list "keys"'),
        ('{"keys": [{"id": "k1"}]}', 'keys[1] must be an object with string "id" and "secret"'),
        ('{"keys": [{"id": "k1", "secret": "c2hvcnQ"}]}', "key 'k1': the secret is 5 bytes"),
        ('{"keys": []}', "no key"),
    ],
)
def test_a_malformed_key_file_is_refused_naming_the_file(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "qr-keys.json"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(QrConfigError) as refused:
        load_key_file(path)
    assert str(refused.value).startswith(f"PINGJING_QR_KEY_FILE {path}: ")
    assert expected in str(refused.value)


def test_two_first_runs_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "qr-keys.json"
    winner = load_key_file(path)
    _create(path, keyring(new_key("k1")))  # the slower process finds the file there and keeps it
    assert load_key_file(path).active.secret == winner.active.secret
    assert mode(path) == 0o600


def test_rotating_the_key_file_puts_a_new_key_first_and_keeps_the_old(tmp_path: Path) -> None:
    path = tmp_path / "qr-keys.json"
    old = load_key_file(path).active
    rotated, new = rotate_key_file(path)
    assert [k.kid for k in rotated.keys] == ["k2", "k1"]
    assert new.secret != old.secret
    reloaded = load_key_file(path)
    assert reloaded.active.secret == new.secret
    assert reloaded.get("k1").secret == old.secret  # type: ignore[union-attr]
    assert mode(path) == 0o600
    retired = retire_key(path, "k1")
    assert [k.kid for k in retired.keys] == ["k2"]
    assert [k.kid for k in load_key_file(path).keys] == ["k2"]
    assert sorted(os.listdir(tmp_path)) == ["qr-keys.json"]


def test_the_active_key_or_an_unknown_one_cannot_be_retired(tmp_path: Path) -> None:
    path = tmp_path / "qr-keys.json"
    rotate_key_file(path)
    with pytest.raises(QrConfigError, match="key 'k2' is the active one; rotate first"):
        retire_key(path, "k2")
    with pytest.raises(QrConfigError, match=r"no key 'k7' \(keys: k2, k1\)"):
        retire_key(path, "k7")
    assert [k.kid for k in load_key_file(path).keys] == ["k2", "k1"]


def test_the_key_file_holds_the_form_the_environment_takes(tmp_path: Path) -> None:
    path = tmp_path / "qr-keys.json"
    ring = load_key_file(path)
    entry = json.loads(path.read_text())["keys"][0]
    assert parse_keys(f"{entry['id']}:{entry['secret']}").active.secret == ring.active.secret
