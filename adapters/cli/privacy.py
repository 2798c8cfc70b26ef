"""``privacy erase|retention|rotate-master-key|status``: citizens' personal data (DESIGN §7).

``erase`` deletes a citizen's key and records the erasure on each of their cases (the events
stay; the phone and name become unreadable everywhere); ``retention`` erases what the
retention period says is due; ``rotate-master-key`` re-wraps every citizen's key under a new
master key; ``status`` counts the stored keys per master key. None of them prints a phone or a
name.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from adapters import output
from adapters.bootstrap import Runtime
from adapters.cli.common import EXIT_OK, UsageError, add_format, current_views, login_name
from adapters.privacy.erase import Erased, erasable, erase_case, erase_citizen
from adapters.privacy.retention import Retention
from adapters.privacy.rotation import rotate_master_key
from adapters.privacy.vault import Vault
from domain.application import Context
from domain.ids import LOCAL_TZ
from domain.values import Actor, Channel


def register(sub: Any) -> None:
    """Add ``privacy``."""
    privacy = sub.add_parser("privacy", help="citizens' personal data: erase, retention, master key").add_subparsers(
        dest="privacy_command", required=True, metavar="ACTION"
    )
    erase = privacy.add_parser(
        "erase", help="delete a citizen's key and record the erasure: their phone and name become unreadable"
    )
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--citizen", metavar="REF", help="the citizen reference (every case of that citizen)")
    who.add_argument("--case", metavar="CASE_REF", help="the case whose citizen's contact to erase")
    erase.add_argument("--reason", required=True, help="why (recorded; never personal data)")
    erase.add_argument("--by", default=f"admin:{login_name()}", help="who erases: ROLE:ID (default: admin:LOGIN)")
    add_format(erase)
    erase.set_defaults(handler=cmd_erase)
    retention = privacy.add_parser(
        "retention", help="erase the contacts of cases closed more than PINGJING_RETENTION_DAYS days ago"
    )
    retention.add_argument("--dry-run", action="store_true", help="only list the cases whose contact is due")
    retention.add_argument("--days", type=int, help="override PINGJING_RETENTION_DAYS for this run")
    add_format(retention)
    retention.set_defaults(handler=cmd_retention)
    rotate = privacy.add_parser("rotate-master-key", help="re-wrap every citizen's key under a new master key")
    rotate.set_defaults(handler=cmd_rotate)
    status = privacy.add_parser("status", help="stored citizen keys per master key, and the configured master keys")
    add_format(status)
    status.set_defaults(handler=cmd_status)


def _vault(rt: Runtime) -> Vault:
    personal = rt.app.personal
    if not isinstance(personal, Vault):
        raise UsageError(f"{rt.store.description} keeps no keys (personal data live in this process only)")
    return personal


def _line(done: Erased) -> str:
    when = f"{done.erased_at.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}" if done.erased_at else "?"
    if done.recorded:
        key = "key deleted" if done.key_deleted else "no key was stored"
        text = f"case {done.case_ref}: contact of citizen {done.citizen_ref} erased ({key}; recorded {when})"
    else:
        extra = "; its key was still stored and is deleted now" if done.key_deleted else ""
        text = f"case {done.case_ref}: contact of citizen {done.citizen_ref} already erased at {when}{extra}"
    if done.in_clear:
        text += (
            "\n  note: this contact was stored before contacts were sealed: every view shows it erased, but the stored "
            "event still holds it (the log is never rewritten)"
        )
    return text


def _row(done: Erased) -> dict[str, Any]:
    return {
        "case_ref": done.case_ref, "citizen_ref": done.citizen_ref, "key_deleted": done.key_deleted,
        "recorded": done.recorded, "already_erased": not done.recorded,
        "erased_at": done.erased_at.isoformat() if done.erased_at else None, "stored_in_clear": done.in_clear,
    }


def _purge_note(rt: Runtime) -> str | None:
    personal = rt.app.personal
    return personal.last_purge if isinstance(personal, Vault) else None


def cmd_erase(rt: Runtime, args: argparse.Namespace) -> int:
    """Erase one case's or one citizen's contact; a second time says it was done before."""
    context = Context(Actor.parse(args.by), Channel.API)
    erasable(rt.app)
    orphan = False
    if args.case:
        done = [erase_case(rt.app, args.case, args.reason, context)]
    else:
        done, orphan = erase_citizen(rt.app, args.citizen.strip(), args.reason, context)
    note = _purge_note(rt)
    if args.format == "json":
        output.emit_json({"erased": [_row(d) for d in done], "orphan_key_deleted": orphan, "purge_problem": note})
        return EXIT_OK
    if orphan:
        print(f"citizen {args.citizen.strip()}: no case names this citizen; their key was deleted")
    for d in done:
        print(_line(d))
    if note:
        print(f"warning: {note}", file=sys.stderr)
    return EXIT_OK


def cmd_retention(rt: Runtime, args: argparse.Namespace) -> int:
    """Erase (or list, with ``--dry-run``) the contacts due under the retention period."""
    days = args.days if args.days is not None else rt.settings.retention_days
    if days < 1:
        raise UsageError("--days must be at least 1")
    run = Retention(rt.app, current_views(rt), days).run_once(dry_run=args.dry_run)
    if args.format == "json":
        output.emit_json({
            "days": days, "cutoff": run.cutoff.isoformat(), "dry_run": args.dry_run, "due": run.due,
            "erased": [_row(d) for d in run.erased], "failed": run.failed,
        })
        return EXIT_OK
    cutoff = f"{run.cutoff.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}"
    if args.dry_run:
        print(f"{len(run.due)} contacts of cases closed before {cutoff} ({days} days) are due for erasure")
        for ref in run.due:
            print(f"  {ref}")
        return EXIT_OK
    print(f"retention ({days} days, cases closed before {cutoff}): {len(run.erased)} contacts erased")
    for d in run.erased:
        print(f"  {_line(d)}")
    for ref, why in run.failed.items():
        print(f"  case {ref}: not erased this time: {why}", file=sys.stderr)
    return EXIT_OK


def cmd_rotate(rt: Runtime, args: argparse.Namespace) -> int:
    """Re-wrap every stored citizen key under a new master key; the old one stays readable until done."""
    vault = _vault(rt)
    done = rotate_master_key(vault)
    print(f"{done.rewrapped} citizen keys re-wrapped; every key is wrapped by master key {done.active} now")
    if done.new_key:
        print(f"a new master key {done.active} was put in {vault.masters.source}")
    if done.retired:
        print(f"retired from the key file: {', '.join(done.retired)} (no key is wrapped by it any more)")
    if done.drop_from_env:
        print(f"drop {', '.join(done.drop_from_env)} from PINGJING_DATA_KEY now (keep only the first key)")
    if vault.last_purge:
        print(f"warning: {vault.last_purge}", file=sys.stderr)
    return EXIT_OK


def cmd_status(rt: Runtime, args: argparse.Namespace) -> int:
    """How many citizen keys each master key wraps, and which master keys are configured."""
    vault = _vault(rt)
    vault.ensure_masters()
    counts = vault.table.counts()
    configured = vault.masters.ids()
    data = {
        "store": vault.table.description(),
        "master_keys": vault.masters.source,
        "active": configured[0],
        "configured": configured,
        "keys_per_master_key": counts,
        "unreadable": sum(n for kid, n in counts.items() if kid not in configured),
    }
    if args.format == "json":
        output.emit_json(data)
        return EXIT_OK
    output.table(
        f"citizen keys in {data['store']} (master keys: {data['master_keys']})",
        ("master key", "configured", "wraps keys"),
        [
            (kid, ("yes, wraps new keys" if kid == configured[0] else "yes") if kid in configured else "NO", n)
            for kid, n in sorted({**dict.fromkeys(configured, 0), **counts}.items())
        ],
    )
    if data["unreadable"]:
        print(f"{data['unreadable']} keys are wrapped by a master key that is not configured", file=sys.stderr)
    return EXIT_OK
