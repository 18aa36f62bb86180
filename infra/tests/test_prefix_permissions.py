"""Permissions of a second installation (NATS_SUBJECT_PREFIX) on the same account: the users that
infra/k8s/scripts/render_auth.py renders for `blue` grant exactly what the `tapio` ones grant, on
blue's names only; on a real nats-server holding both installations' users, the table of
test_permission_table holds for each installation and every cross-installation operation is
refused (the admins excepted where they act as account operators, see ACCOUNT_OPERATOR)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import nats
import pytest

from infra.k8s.scripts.render_auth import (
    DEFAULT_PERMISSIONS,
    RenderError,
    main,
    rename_subject,
    rename_user,
    render_conf,
    render_users,
)
from infra.tests.natsconf import parse_text
from infra.tests.permtable import PUBLISH, SUBSCRIBE
from tapio_common.nats.embedded import find_nats_server, free_port
from tapio_testing.natscluster import healthz

PREFIXES = ("tapio", "blue")
PERMISSIONS: dict[str, Any] = json.loads(DEFAULT_PERMISSIONS.read_text(encoding="utf-8"))["users"]
USERS = frozenset(PERMISSIONS)
# The admins' "$JS.API.>" and "$JS.ACK.>" span the account (stream admin, DLQ replay): an
# installation's operator may also act on the other installation's JetStream objects.
ACCOUNT_OPERATOR = ("$JS.API.", "$JS.ACK.")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    else:
        for v in value.values():
            yield from _strings(v)


def test_the_tapio_installation_renders_to_permissions_json() -> None:
    tapio = render_users(PERMISSIONS, "tapio")
    assert tapio == {u: p for u, p in PERMISSIONS.items() if u != "nack"}


def test_blue_has_the_same_grants_on_its_own_names_only() -> None:
    blue = render_users(PERMISSIONS, "blue")
    assert set(blue) == {rename_user(u, "blue") for u in USERS - {"nack"}}
    assert all(u.startswith("blue-") for u in blue)
    for user, perms in blue.items():
        mine = list(_strings(perms))
        theirs = list(_strings(PERMISSIONS[user.replace("blue-", "tapio-", 1)]))
        assert len(mine) == len(theirs)
        for subject in mine:
            tokens = subject.split(".")
            assert "tapio" not in tokens, subject
            assert not any(re.match(r"(KV_)?TAPIO_|tapio-", t) for t in tokens), subject
    assert blue["blue-collectors"]["publish"] == ["blue.events.>", "$JS.API.STREAM.INFO.BLUE_EVENTS"]
    assert blue["blue-pipeline"]["subscribe"] == ["blue.events.>", "_INBOX.blue-pipeline.>"]
    assert "$KV.BLUE_CORRELATOR_STATE.>" in blue["blue-correlation"]["publish"]["allow"]
    assert rename_subject("$JS.API.CONSUMER.CREATE.TAPIO_ALERTS.*.tapio.alerts.>", "blue", USERS) == (
        "$JS.API.CONSUMER.CREATE.BLUE_ALERTS.*.blue.alerts.>"
    )


def test_rendered_conf_parses_with_both_installations_and_nack_once(tmp_path: Path) -> None:
    text = render_conf(PERMISSIONS, list(PREFIXES))
    users = parse_text(text, tmp_path)["authorization"]["users"]
    names = [u["user"] for u in users]
    assert sorted(names) == sorted([*(u for u in USERS), *(rename_user(u, "blue") for u in USERS - {"nack"})])
    assert all("password" not in u for u in users)


def test_bad_arguments_are_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--prefix", "Blue"]) == 2
    assert "bad subject prefix 'Blue'" in capsys.readouterr().err
    assert main(["--prefix", "blue", "--prefix", "blue"]) == 2
    assert "given twice" in capsys.readouterr().err
    with pytest.raises(RenderError, match="neither a Tapio user"):
        rename_user("someone", "blue")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A nats-server whose users are the rendered users of both installations (plus a password
    each, for this test only: the permissions are what is under test, not the identity)."""
    root = tmp_path_factory.mktemp("prefix-perms")
    users = parse_text(render_conf(PERMISSIONS, list(PREFIXES)), root)["authorization"]["users"]
    passwords = {u["user"]: f"pw-{u['user']}" for u in users}
    entries = "\n".join(
        "    " + json.dumps({**u, "password": passwords[u["user"]]}) for u in users if u["user"] != "nack"
    )
    port, http = free_port(), free_port()
    conf = root / "nats.conf"
    conf.write_text(
        f"listen: 127.0.0.1:{port}\nhttp: 127.0.0.1:{http}\nauthorization {{\n  users: [\n{entries}\n  ]\n}}\n"
    )
    log = root / "nats.log"  # a file: a pipe nobody reads would stall the server once full
    proc = subprocess.Popen([find_nats_server(), "-c", str(conf), "-l", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(100):
            if healthz("127.0.0.1", http) == 200:
                break
            assert proc.poll() is None, log.read_text(errors="replace") if log.exists() else "no log"
            anyio.run(anyio.sleep, 0.1)
        yield f"nats://127.0.0.1:{port}", {u: p for u, p in passwords.items() if u != "nack"}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _expectations() -> list[tuple[str, str, set[str]]]:
    """(operation, subject, users allowed) of both installations."""
    rows: list[tuple[str, str, set[str]]] = []
    for prefix in PREFIXES:
        for op, table in (("pub", PUBLISH), ("sub", SUBSCRIBE)):
            for subject, allowed in table:
                mine = rename_subject(subject, prefix, USERS)
                rows.append((op, mine, {rename_user(u, prefix) for u in allowed}))
    return rows


async def _refused(
    url: str, user: str, password: str, rows: list[tuple[str, str, set[str]]], expected: int
) -> set[str]:
    """The subjects refused to `user` (lower case), once `expected` refusals came or 10 s passed."""
    errors: list[str] = []

    enough = anyio.Event()

    async def on_error(e: Exception) -> None:
        errors.append(str(e))
        if len(errors) >= expected:
            enough.set()

    nc = await nats.connect(url, user=user, password=password, inbox_prefix=f"_INBOX.{user}",
                            error_cb=on_error, allow_reconnect=False)  # fmt: skip
    try:
        for op, subject, _ in rows:
            if op == "pub":
                await nc.publish(subject, b"{}")
            else:
                await nc.subscribe(subject)
        await nc.flush()
        with anyio.move_on_after(10):  # the -ERR of each refusal is reported asynchronously
            if expected:
                await enough.wait()
        await anyio.sleep(0.3)  # and a refusal the table does not expect has had time to come
    finally:
        await nc.close()
    return {
        m.group(2).lower()
        for e in errors
        for m in re.finditer(r'(publish|subscription) to "([^"]+)"', e, re.I)
    }


def _wanted(user: str, subject: str, allowed: set[str]) -> bool:
    return user in allowed or (user.endswith("-admin") and subject.startswith(ACCOUNT_OPERATOR))


@pytest.mark.anyio
async def test_each_installation_reaches_only_its_own_names(server: tuple[str, dict[str, str]]) -> None:
    url, passwords = server
    rows = _expectations()
    # nats-py reports the refused subject in lower case: rows must differ in lower case too
    assert len({s.lower() for _, s, _ in rows}) == len(rows) - 1  # `_INBOX.>` is the same row in both
    for user, password in sorted(passwords.items()):
        wants = [_wanted(user, subject, allowed) for _, subject, allowed in rows]
        refused = await _refused(url, user, password, rows, wants.count(False))
        for (op, subject, _), want in zip(rows, wants, strict=True):
            assert (subject.lower() not in refused) == want, (
                user,
                op,
                subject,
                "allowed" if want else "refused",
            )
