"""``qr officer|unit|sheet|verify|keys``: print QR codes, check a scanned one, manage the signing keys."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adapters import output
from adapters.bootstrap import Runtime
from adapters.cli.common import EXIT_OK, UsageError, add_format
from adapters.qr import (
    code_urls,
    issued_target,
    load_keyring,
    png_bytes,
    render_sheet,
    resolve,
    svg_bytes,
    unit_sheet,
    verify_token,
)
from adapters.qr.keys import Keyring, retire_key, rotate_key_file
from adapters.qr.tokens import token_from_text
from domain.values import QrSubject

IMAGE_FORMATS = ("png", "svg")


def register(sub: Any) -> None:
    """Add ``qr``."""
    qr = sub.add_parser("qr", help="QR codes of officers and units: images, printable sheets, signing keys")
    actions = qr.add_subparsers(dest="qr_command", required=True, metavar="ACTION")
    for subject, metavar, what in ((QrSubject.OFFICER, "BADGE", "an officer's"), (QrSubject.UNIT, "CODE", "a unit's")):
        p = actions.add_parser(subject.value, help=f"write {what} current code (PNG or SVG) and print its URL")
        p.add_argument("key", metavar=metavar)
        p.add_argument("--format", choices=IMAGE_FORMATS, help="image format (default: -o's suffix, else png)")
        p.add_argument("-o", "--output", type=Path, help="file or directory to write (default: PINGJING_QR_DIR)")
        p.set_defaults(handler=cmd_code, subject=subject)
    sheet = actions.add_parser("sheet", help="write a unit's printable A4 sheet (HTML): its code and its officers'")
    sheet.add_argument("unit", metavar="UNIT")
    sheet.add_argument("-o", "--output", type=Path, help="file or directory to write (default: PINGJING_QR_DIR)")
    sheet.set_defaults(handler=cmd_sheet)
    verify = actions.add_parser("verify", help="check a scanned code (URL or token): whom it rates, or why not")
    verify.add_argument("token", metavar="URL|TOKEN")
    add_format(verify, "table", "json")
    verify.set_defaults(handler=cmd_verify)
    keys = actions.add_parser("keys", help="the signing keys: list, rotate, retire").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    keys.add_parser("list", help="key ids and which one signs (never the secrets)").set_defaults(handler=cmd_keys)
    keys.add_parser("rotate", help="key file: a new key signs from now on, the others still verify").set_defaults(
        handler=cmd_rotate
    )
    retire = keys.add_parser("retire", help="key file: remove an old key; codes signed with it stop working")
    retire.add_argument("kid", metavar="KEY_ID")
    retire.set_defaults(handler=cmd_retire)


def cmd_code(rt: Runtime, args: argparse.Namespace) -> int:
    """Write an officer's or unit's current code and print the URL it points at."""
    fmt = _image_format(args.format, args.output)
    target = issued_target(rt.app, args.subject, args.key)
    url = code_urls(rt.settings)(target)
    path = _path(args.output, rt.settings.qr_dir, f"{target.subject.value}-{target.key}-v{target.version}.{fmt}")
    _write(path, png_bytes(url) if fmt == "png" else svg_bytes(url))
    print(url)
    print(f"wrote {path} ({fmt.upper()}, {target.subject.value} {target.key}, version {target.version})")
    return EXIT_OK


def cmd_sheet(rt: Runtime, args: argparse.Namespace) -> int:
    """Write a unit's printable sheet; say which active officers are not on it and why."""
    sheet = unit_sheet(rt.app, args.unit)
    html = render_sheet(sheet, code_urls(rt.settings), rt.app.clock.now())
    path = _path(args.output, rt.settings.qr_dir, f"sheet-{sheet.unit_code}.html")
    _write(path, html.encode("utf-8"))
    count = len(sheet.officers) + (1 if sheet.unit else 0)
    print(f"wrote {path}: {count} codes ({'the unit and ' if sheet.unit else ''}{len(sheet.officers)} officers)")
    if sheet.unit is None:
        print(f"not on the sheet: the unit's own code (no active code for unit {sheet.unit_code})")
    for badge, why in sheet.skipped:
        print(f"not on the sheet: officer {badge} (QR code {why})")
    return EXIT_OK


def cmd_verify(rt: Runtime, args: argparse.Namespace) -> int:
    """Whom a scanned code rates; a forged, stale or revoked one is refused with its message (exit 1)."""
    claim = verify_token(load_keyring(rt.settings), token_from_text(args.token))
    target = resolve(rt.app, claim)
    data = {
        "subject": target.subject.value,
        "key": target.key,
        "name": target.name,
        "unit_code": target.unit_code,
        "unit_name": target.unit_name,
        "version": target.version,
        "key_id": claim.key_id,
    }
    if args.format == "json":
        output.emit_json(data)
    else:
        output.table("QR code: valid", ("field", "value"), list(data.items()))
    return EXIT_OK


def cmd_keys(rt: Runtime, args: argparse.Namespace) -> int:
    """List the signing keys: ids, which one signs, when they were made."""
    keyring = load_keyring(rt.settings)
    rows = [
        (
            key.kid,
            "signs and verifies" if key is keyring.active else "verifies",
            key.created_at.isoformat(timespec="seconds") if key.created_at else "",
        )
        for key in keyring.keys
    ]
    output.table(f"QR signing keys ({keyring.source})", ("id", "use", "created"), rows)
    return EXIT_OK


def cmd_rotate(rt: Runtime, args: argparse.Namespace) -> int:
    """Put a new key first in the key file."""
    keyring, key = rotate_key_file(_key_file(rt))
    others = ", ".join(k.kid for k in keyring.keys[1:])
    print(f"{key.kid} signs new codes from now on; the older keys ({others}) still verify the codes printed before.")
    print(f"Reprint every code (pingjing qr sheet UNIT), then: pingjing qr keys retire {keyring.keys[1].kid}")
    return EXIT_OK


def cmd_retire(rt: Runtime, args: argparse.Namespace) -> int:
    """Remove an old key from the key file."""
    keyring = retire_key(_key_file(rt), args.kid.strip())
    print(f"{args.kid.strip()} retired: codes signed with it are refused now; keys: {_ids(keyring)}")
    return EXIT_OK


def _image_format(requested: str | None, out: Path | None) -> str:
    suffix = out.suffix.lower().lstrip(".") if out is not None and not out.is_dir() else ""
    if suffix and suffix not in IMAGE_FORMATS:
        raise UsageError(f"-o {out}: write a .png or .svg file")
    if requested and suffix and requested != suffix:
        raise UsageError(f"--format {requested} but -o {out} ends in .{suffix}")
    return requested or suffix or "png"


def _path(out: Path | None, default_dir: Path, name: str) -> Path:
    if out is None:
        return default_dir / name
    return out / name if out.is_dir() else out


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror}") from None


def _key_file(rt: Runtime) -> Path:
    if rt.settings.qr_keys is not None and rt.settings.qr_keys.get_secret_value().strip():
        raise UsageError(
            "the QR keys come from PINGJING_QR_KEYS: put the new ID:SECRET first there and keep the old ones "
            "after it (to rotate), or drop an old one from it (to retire)"
        )
    return rt.settings.qr_key_file


def _ids(keyring: Keyring) -> str:
    return ", ".join(k.kid for k in keyring.keys)
