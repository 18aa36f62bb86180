#!/usr/bin/env python3
"""Renders the NATS users of one or more Tapio installations for one account (NATS_SUBJECT_PREFIX).

`infra/k8s/base/nats/auth.conf` (mirrored by permissions.json) is the `tapio` installation's. A
second installation on the same NATS account has its own prefix, e.g. `blue`: its users are the
same users renamed (`blue-collectors`, `blue-correlation`, ...), granted the same operations on its
own names (`blue.events.>`, BLUE_EVENTS, `$KV.BLUE_CORRELATOR_STATE.>`, `_INBOX.blue-pipeline.>`).
The NACK controller's user is shared by all installations and written once.

    infra/k8s/scripts/render_auth.py --prefix tapio --prefix blue > auth.conf

writes an auth.conf (same form as the base one: `authorization { users: [...] }`) holding the
users of both installations; mount it instead of the base auth.conf and issue each workload of
the second installation a client certificate whose DNS SAN is its renamed user
(verify_and_map). Renaming is token by token: a subject token `tapio` becomes the prefix, a token
starting TAPIO_ or KV_TAPIO_ gets the upper-cased prefix, a Tapio user name (also inside an inbox)
gets the prefix instead of `tapio`; with `--prefix tapio` the output grants exactly
permissions.json. Prefix rules: tapio_common.subjects.check_prefix (lower case a-z 0-9 - _).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

DEFAULT_PERMISSIONS = Path(__file__).resolve().parents[1] / "base" / "nats" / "permissions.json"
SHARED_USERS = ("nack",)  # one controller for the whole account
DEFAULT_PREFIX = "tapio"
_PREFIX = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_STREAM = re.compile(r"^(KV_)?TAPIO_")


class RenderError(ValueError):
    """A bad prefix or permissions file."""


def rename_user(user: str, prefix: str) -> str:
    """`tapio-pipeline` -> `blue-pipeline`; a shared user (nack) keeps its name."""
    if user in SHARED_USERS or prefix == DEFAULT_PREFIX:
        return user
    if not user.startswith(f"{DEFAULT_PREFIX}-"):
        raise RenderError(
            f"user {user!r} is neither a Tapio user (tapio-...) nor shared ({', '.join(SHARED_USERS)})"
        )
    return f"{prefix}-{user.removeprefix(DEFAULT_PREFIX + '-')}"


def rename_subject(subject: str, prefix: str, users: frozenset[str]) -> str:
    """One permission subject of the `tapio` installation as the same grant for `prefix`."""
    out = []
    for token in subject.split("."):
        if token == DEFAULT_PREFIX:
            token = prefix
        elif _STREAM.match(token):
            token = _STREAM.sub(lambda m: f"{m.group(1) or ''}{prefix.upper()}_", token)
        elif token in users:
            token = rename_user(token, prefix)
        out.append(token)
    return ".".join(out)


def _rename_grants(value: Any, prefix: str, users: frozenset[str]) -> Any:
    if isinstance(value, str):
        return rename_subject(value, prefix, users)
    if isinstance(value, list):
        return [_rename_grants(v, prefix, users) for v in value]
    if isinstance(value, dict):
        return {k: _rename_grants(v, prefix, users) for k, v in value.items()}
    raise RenderError(f"unexpected permission value {value!r}")


def render_users(permissions: dict[str, Any], prefix: str) -> dict[str, Any]:
    """user -> permissions of one installation (the shared users left out)."""
    if not _PREFIX.fullmatch(prefix):
        raise RenderError(
            f"bad subject prefix {prefix!r}: one lower-case token (a-z, 0-9, '-', '_'; at most 32), e.g. 'blue'"
        )
    users = frozenset(permissions)
    return {
        rename_user(user, prefix): _rename_grants(perms, prefix, users)
        for user, perms in permissions.items()
        if user not in SHARED_USERS
    }


def render_conf(permissions: dict[str, Any], prefixes: list[str]) -> str:
    """An auth.conf with the users of every installation in `prefixes` and the shared users once."""
    if len(set(prefixes)) != len(prefixes):
        raise RenderError(f"a prefix is given twice: {', '.join(prefixes)}")
    entries: dict[str, Any] = {}
    for prefix in prefixes:
        entries.update(render_users(permissions, prefix))
    entries.update({u: permissions[u] for u in SHARED_USERS if u in permissions})
    lines = [
        f"# Rendered by infra/k8s/scripts/render_auth.py for the installations {', '.join(prefixes)}",
        "# from infra/k8s/base/nats/permissions.json (see auth.conf there for why each grant exists).",
        "# No passwords: each client certificate maps to its user (verify_and_map in nats.conf).",
        "authorization {",
        "  timeout: 5",
        "  users: [",
    ]
    for user, perms in entries.items():
        lines.append(f"    {json.dumps({'user': user, 'permissions': perms})}")
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="render_auth.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="example: infra/k8s/scripts/render_auth.py --prefix tapio --prefix blue > auth.conf",
    )
    parser.add_argument("--prefix", action="append", required=True, metavar="TOKEN",
                        help="an installation's NATS_SUBJECT_PREFIX (repeat for several)")  # fmt: skip
    parser.add_argument("--permissions", type=Path, default=DEFAULT_PERMISSIONS, metavar="FILE",
                        help=f"the tapio installation's permissions (default {DEFAULT_PERMISSIONS})")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        doc = json.loads(args.permissions.read_text(encoding="utf-8"))
        sys.stdout.write(render_conf(doc["users"], args.prefix))
    except (OSError, json.JSONDecodeError, KeyError, RenderError) as e:
        print(f"render_auth.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
