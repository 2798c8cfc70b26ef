"""The notifications file: what it routes where, and bad files refused with the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.notify.config import NotificationConfigError, load_config
from domain.notifications import DeliveryChannel
from tests.notifications.conftest import SECRET, SECRET_ENV, write_config

FULL = f"""
[office]
email = ["ducha@lingshou.example.org"]
webhook = true

[units."ls-pcs-01"]
email = ["head.pcs01@lingshou.example.org"]

[units."*"]
email = ["{{code_lower}}@units.lingshou.example.org", "{{code}}-archive@lingshou.example.org"]

[webhook]
url = "https://hooks.lingshou.example.org/pingjing"
secret_env = "{SECRET_ENV}"
max_attempts = 7
backoff_seconds = 15

[smtp]
host = "mail.lingshou.example.org"
port = 587
sender = "pingjing@lingshou.example.org"
starttls = true
username = "pingjing"
password_env = "PJ_SMTP_PASSWORD"
"""
SMTP_PASSWORD = "mail-password"  # noqa: S105 - a test value handed in as the environment
ENV = {SECRET_ENV: SECRET, "PJ_SMTP_PASSWORD": SMTP_PASSWORD}


def test_without_a_file_everyone_gets_the_structured_log_only() -> None:
    config = load_config(None)
    assert config.routes("office") == [(DeliveryChannel.LOG, "")]
    assert config.routes("unit:PS1") == [(DeliveryChannel.LOG, "")]
    assert config.retry(DeliveryChannel.LOG).max_attempts == 5


def test_a_full_file_routes_the_office_and_each_unit_to_its_channels(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "n.toml", FULL), ENV)
    assert config.routes("office") == [
        (DeliveryChannel.LOG, ""),
        (DeliveryChannel.WEBHOOK, "https://hooks.lingshou.example.org/pingjing"),
        (DeliveryChannel.EMAIL, "ducha@lingshou.example.org"),
    ]
    assert config.routes("unit:LS-PCS-01") == [
        (DeliveryChannel.LOG, ""),
        (DeliveryChannel.EMAIL, "head.pcs01@lingshou.example.org"),
    ]
    assert config.routes("unit:PS2") == [
        (DeliveryChannel.LOG, ""),
        (DeliveryChannel.EMAIL, "ps2@units.lingshou.example.org, PS2-archive@lingshou.example.org"),
    ]
    assert config.webhook_secret == SECRET.encode()
    assert config.smtp_password == SMTP_PASSWORD
    retry = config.retry(DeliveryChannel.WEBHOOK)
    assert (retry.max_attempts, retry.backoff_seconds, retry.max_backoff_seconds) == (7, 15, 3600)
    assert SECRET not in repr(config)
    assert SMTP_PASSWORD not in repr(config)


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[office\nemail = 1", ENV, "not valid TOML"),
        ("[webhook]\nurl = 'https://h.example.org/'\nsecret_env = 'X'\nretries = 3", {"X": "s"},
         "webhook.retries: unknown key (expected one of: backoff_seconds, max_attempts, max_backoff_seconds, "
         "secret_env, timeout_seconds, url)"),
        ("[webhook]\nurl = 'https://h.example.org/'\nsecret_env = 'X'\nmax_attempts = 0", {"X": "s"},
         "webhook.max_attempts: Input should be greater than or equal to 1 (got 0)"),
        ("[webhook]\nurl = 'ftp://h.example.org/'\nsecret_env = 'X'", {"X": "s"}, "webhook.url: String should match"),
        ("[webhook]\nsecret_env = 'X'", {"X": "s"}, "webhook.url: required key is missing"),
        ("[webhook]\nurl = 'https://h.example.org/'\nsecret_env = 'PJ_UNSET'", {},
         "[webhook] secret_env: the environment variable PJ_UNSET is not set or empty"),
        ("[webhook]\nurl = 'https://h.example.org/'\nsecret = 'in-the-file'\nsecret_env = 'X'", {"X": "s"},
         "webhook.secret: unknown key"),
        ("[office]\nwebhook = true", {}, "office.webhook is true but there is no [webhook] table"),
        ("[units.PS1]\nemail = ['a@b.example.org']", {}, 'units."PS1".email is set but there is no [smtp] table'),
        ("[units.PS1]\nemail = ['not an address']", {}, "units.\"PS1\": 'not an address' is not an e-mail address"),
        ("[units.PS1]\nemail = ['{unit}@b.example.org']", {}, "the only placeholders are {code} and {code_lower}"),
        ("[units.PS1]\nfax = '123'", {}, 'units."PS1".fax: unknown key (expected one of: email, webhook)'),
        ("[units.'a b']\nemail = []", {}, 'units."A B": not a unit code'),
        ("[office]\nemail = ['{code}@b.example.org']\n[smtp]\nhost = 'h'\nsender = 'p@b.example.org'", {},
         "office.email: {code} placeholders belong to units"),
        ("[smtp]\nhost = 'h'\nsender = 'p@b.example.org'\nusername = 'u'", {},
         "username is set but password_env (the variable holding the password) is not"),
        ("[smtp]\nhost = 'h'\nsender = 'p@b.example.org'\nusername = 'u'\npassword_env = 'PJ_UNSET'", {},
         "[smtp] password_env: the environment variable PJ_UNSET is not set or empty"),
        ("[smtp]\nhost = 'h'\nsender = 'p@b.example.org'\nport = 70000", {},
         "smtp.port: Input should be less than or equal to 65535 (got 70000)"),
        ("[smtp]\nhost = 'h'\nsender = 'p@b.example.org'\nbackoff_seconds = 60\nmax_backoff_seconds = 30", {},
         "smtp: max_backoff_seconds is less than backoff_seconds"),
        ("log = 'yes please'", {}, "log: Input should be a valid boolean"),
    ],
)
def test_a_bad_file_is_refused_with_its_path_the_key_and_what_is_wrong(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = write_config(tmp_path / "notifications.toml", text)
    with pytest.raises(NotificationConfigError) as refused:
        load_config(path, env)
    assert str(refused.value).startswith(f"PINGJING_NOTIFICATIONS {path}: ")
    assert message in str(refused.value)


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(NotificationConfigError, match=r"nowhere.toml: cannot be read: No such file"):
        load_config(path, {})
