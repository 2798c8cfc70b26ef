"""``audit verify|seal``: check the tamper-evident log, and seal it.

``audit verify`` reads the store with plain SQL (it never decodes an event but the seals),
so it runs on a store as large as it gets and while the service keeps writing: it checks
the snapshot it started from.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from adapters import output
from adapters.audit.log import AuditNotSupportedError, NotAChainedStoreError, chain_log_of
from adapters.audit.seals import seal
from adapters.audit.verify import ExpectError, as_json, describe, parse_expect, verify
from adapters.bootstrap import Runtime
from adapters.cli.common import EXIT_DOMAIN, EXIT_OK, UsageError, add_format
from domain.application import Context
from domain.values import Actor, Channel


def register(sub: Any) -> None:
    """Add ``audit``."""
    audit = sub.add_parser("audit", help="the tamper-evident log: verify the hash chain, seal it").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    check = audit.add_parser(
        "verify",
        help="recompute every event hash and the chain; name the first event changed, deleted, inserted or moved",
    )
    check.add_argument(
        "--from", dest="start", type=_position, metavar="POSITION",
        help="trust the stored chain up to just before POSITION and check from there",
    )
    check.add_argument(
        "--expect", action="append", default=[], metavar="POSITION:HASH",
        help="a chain hash known from outside (a monthly bulletin, a seal); repeatable",
    )
    add_format(check, "table", "json")
    check.set_defaults(handler=cmd_verify)
    make = audit.add_parser("seal", help="record the chain's head (position and hash) as a seal in the log")
    make.add_argument("--by", default="system", help="who seals: system or supervisor:ID (default: system)")
    add_format(make, "table", "json")
    make.set_defaults(handler=cmd_seal)


def _position(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a log position") from None
    if value < 1:
        raise argparse.ArgumentTypeError("log positions start at 1")
    return value


def cmd_verify(rt: Runtime, args: argparse.Namespace) -> int:
    """Exit 0 when the log is intact, 1 at the first problem (named on stdout)."""
    try:
        expect = [parse_expect(text) for text in args.expect]
        result = verify(chain_log_of(rt.app), rt.app.mapper, start=args.start, expect=expect)
    except (ExpectError, AuditNotSupportedError) as error:
        raise UsageError(f"audit verify: {error}") from None
    except NotAChainedStoreError as error:
        print(f"pingjing: audit verify: {error}", file=sys.stderr)
        return EXIT_DOMAIN
    if args.format == "json":
        output.emit_json(as_json(result))
    else:
        verdict = "intact" if result.intact else "NOT INTACT"
        output.table(f"audit verify: {verdict}", ("field", "value"), describe(result))
    return EXIT_OK if result.intact else EXIT_DOMAIN


def cmd_seal(rt: Runtime, args: argparse.Namespace) -> int:
    """Seal the head of the chain now and print what anyone can check later."""
    actor = Actor.parse(args.by)
    context = Context(actor, Channel.SYSTEM if actor.principal == "system" else Channel.API)
    try:
        made = seal(rt.app, context)
    except AuditNotSupportedError as error:
        raise UsageError(f"audit seal: {error}") from None
    if made is None:
        print("pingjing: audit seal: the log is empty; nothing to seal", file=sys.stderr)
        return EXIT_DOMAIN
    data = {
        "position": made.position,
        "chain_hash": made.chain_hash,
        "sealed_at": made.sealed_at.isoformat(),
        "sealed_by": made.sealed_by,
        "recorded_at": made.recorded_at,
        "check": f"pingjing audit verify --expect {made.expect}",
    }
    if args.format == "json":
        output.emit_json(data)
    else:
        output.table(f"sealed the log at position {made.position}", ("field", "value"), list(data.items()))
    return EXIT_OK
