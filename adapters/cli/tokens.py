"""``token create|list|revoke``: the staff API's bearer tokens.

A token's secret is printed once, when it is made; the store keeps only its SHA-256.
"""

from __future__ import annotations

import argparse
import secrets
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from pydantic import ValidationError as PydanticValidationError

from adapters import output
from adapters.bootstrap import Runtime
from adapters.cli.common import EXIT_OK, UsageError, add_format, login_name
from domain import commands as c
from domain.application import Context
from domain.ids import LOCAL_TZ
from domain.tokens import TOKEN_ROLES, ApiToken, hash_token
from domain.values import Actor, Channel

#: Secrets look like ``pj_`` and 43 URL-safe characters (256 random bits).
SECRET_PREFIX = "pj_"  # noqa: S105 - a prefix that marks pingjing tokens, not a secret
_PAGE = 1000


def register(sub: Any) -> None:
    """Add ``token``."""
    token = sub.add_parser("token", help="bearer tokens of the staff API").add_subparsers(
        dest="token_command", required=True, metavar="ACTION"
    )
    create = token.add_parser("create", help="make a token and print its secret (once)")
    create.add_argument("--role", required=True, choices=sorted(r.value for r in TOKEN_ROLES))
    create.add_argument("--principal", required=True, help="who holds it: a badge for officers and unit heads")
    create.add_argument("--unit", help="a unit head's unit (code)")
    create.add_argument("--label", help="what the token is for")
    create.add_argument("--by", default=f"admin:{login_name()}",
                        help="the administrator making it (default: admin:LOGIN)")
    add_format(create)
    create.set_defaults(handler=cmd_create)
    lst = token.add_parser("list", help="every token (never a secret)")
    add_format(lst)
    lst.set_defaults(handler=cmd_list)
    revoke = token.add_parser("revoke", help="revoke a token: requests carrying it get 401 from now on")
    revoke.add_argument("id", help="the token's id (from token list)")
    revoke.add_argument("--reason", default="revoked by an administrator", help="why")
    revoke.add_argument("--by", default=f"admin:{login_name()}", help="the administrator revoking it")
    revoke.set_defaults(handler=cmd_revoke)


def _context(by: str) -> Context:
    return Context(Actor.parse(by), Channel.API)


def cmd_create(rt: Runtime, args: argparse.Namespace) -> int:
    """Make a token; its secret is printed here and nowhere else."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    try:
        command = c.CreateApiToken(
            token_hash=hash_token(secret), role=args.role, principal=args.principal, unit_code=args.unit,
            label=args.label,
        )
    except PydanticValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "token"
        raise UsageError(f"{where}: {first['msg']}") from None
    receipt = rt.app.create_api_token(command, _context(args.by))
    data = {
        "id": str(receipt.aggregate_id),
        "role": command.role,
        "principal": command.principal,
        "unit": command.unit_code,
        "label": command.label,
        "token": secret,
    }
    if args.format == "json":
        output.emit_json(data)
    else:
        output.table("API token created", ("field", "value"), [(k, v or "") for k, v in data.items()])
        print("The token is shown only now; it is stored as a hash. Send it as: Authorization: Bearer <token>")
    return EXIT_OK


def tokens(rt: Runtime) -> list[ApiToken]:
    """Every token ever made, oldest first, as it stands now."""
    topic = get_topic(ApiToken.Created)
    found: list[ApiToken] = []
    start = 1
    while True:
        page = rt.app.recorder.select_notifications(start=start, limit=_PAGE, topics=[topic])
        for notification in page:
            oid = notification.originator_id
            token = rt.app.get_aggregate(oid if isinstance(oid, UUID) else UUID(oid))
            if isinstance(token, ApiToken):
                found.append(token)
        if len(page) < _PAGE:
            return found
        start = page[-1].id + 1


def cmd_list(rt: Runtime, args: argparse.Namespace) -> int:
    """The tokens, without their secrets or hashes."""
    found = tokens(rt)
    rows = [
        {
            "id": str(t.id),
            "role": t.role.value,
            "principal": t.principal,
            "unit": t.unit_code,
            "label": t.description,
            "created_at": t.created_at.isoformat(),
            "created_by": t.created_by,
            "revoked": t.revoked,
        }
        for t in found
    ]
    if args.format == "json":
        output.emit_json(rows)
        return EXIT_OK
    output.table(
        f"{len(rows)} API tokens",
        ("id", "role", "principal", "unit", "label", "created (Asia/Shanghai)", "by", "revoked"),
        [
            (r["id"], r["role"], r["principal"], r["unit"] or "", r["label"] or "",
             f"{t.created_at.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}", r["created_by"], "revoked" if r["revoked"] else "")
            for r, t in zip(rows, found, strict=True)
        ],
    )
    return EXIT_OK


def cmd_revoke(rt: Runtime, args: argparse.Namespace) -> int:
    """Revoke a token by its id."""
    try:
        command = c.RevokeApiToken(token_id=str(UUID(args.id.strip())), reason=args.reason)
    except ValueError:  # pydantic's ValidationError is a ValueError too
        raise UsageError(f"{args.id!r} is not a token id (see pingjing token list)") from None
    rt.app.revoke_api_token(command, _context(args.by))
    print(f"API token {command.token_id} revoked; requests carrying it are refused from now on")
    return EXIT_OK
