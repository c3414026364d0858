"""``cascade-mqtt`` refuses a scope the broker would refuse, before it touches the network.

A scope with a newline, a TAB, an escape sequence, a C1 control, a non-character, bytes that are not
UTF-8, or a part of whitespace only fails in one line on stderr with exit code 2 (invalid input), and
the CLI never even opens a connection: the URL points at a listening socket that nobody accepts on, and
the test checks that no connection reached it.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator

import pytest

from .conftest import SCRIPT, cli_env

BAD_SCOPES = [
    "task:a\nb",
    "task:a\tb",
    "task:\x1b[31mred",
    "task:a\x7f",
    "task:a\x85",
    "task:a\ufffe",
    "task:a\U0010ffff",
    "task: ",
    "project:\u3000",
    "team:data: ",
]
# Every bad scope through pause; resume and limit check scopes the same way (two of them each).
CASES = [(["pause"], scope) for scope in BAD_SCOPES] + [
    (command, scope) for command in (["resume"], ["limit", "--concurrency", "2"]) for scope in BAD_SCOPES[:2]
]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket that accepts nothing: connections the CLI made would wait in its backlog."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def run(args: list[str | bytes], url: str) -> subprocess.CompletedProcess[bytes]:
    assert SCRIPT.exists(), f"{SCRIPT} is missing: pip install -e packages/cascade-connector-mqtt"
    return subprocess.run(
        [
            os.fsencode(SCRIPT),
            b"--url",
            url.encode(),
            *(a.encode() if isinstance(a, str) else a for a in args),
        ],
        capture_output=True,
        timeout=60,
        env=cli_env(),
        check=False,
    )


def assert_refused_offline(done: subprocess.CompletedProcess[bytes], listener: socket.socket) -> str:
    stderr = done.stderr.decode("utf-8")
    assert done.returncode == 2, stderr
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("cascade-mqtt: error: invalid scope ")
    assert "Traceback" not in stderr
    assert stderr.isascii()  # the bad characters are shown escaped, never raw on the terminal
    assert done.stdout == b""
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected: the scope was refused before any network use
    return stderr


@pytest.mark.parametrize(
    ("command", "scope"),
    [pytest.param(c, s, id=f"{c[0]}-{s.encode('unicode_escape').decode()[:20]}") for c, s in CASES],
)
def test_a_scope_the_broker_would_refuse_fails_fast_with_exit_code_2(
    listener: socket.socket, command: list[str], scope: str
) -> None:
    host, port = listener.getsockname()
    done = run([command[0], scope, *command[1:]], f"mqtt://{host}:{port}")
    stderr = assert_refused_offline(done, listener)
    assert ("whitespace only" in stderr) == scope.endswith((" ", "\u3000"))
    if "whitespace only" not in stderr:
        assert "U+" in stderr
        assert "remove or replace it" in stderr


def test_argv_bytes_that_are_not_utf8_are_refused_as_a_lone_surrogate(listener: socket.socket) -> None:
    """Python decodes undecodable argv bytes to lone surrogates, which UTF-8 (and MQTT) cannot carry."""
    host, port = listener.getsockname()
    done = run(["pause", b"task:\xff"], f"mqtt://{host}:{port}")
    stderr = assert_refused_offline(done, listener)
    assert "U+DCFF (a lone surrogate" in stderr


@pytest.mark.parametrize("name", ["a\tb", "a\nb", "a\ufffe"], ids=["tab", "newline", "noncharacter"])
def test_a_watch_project_the_broker_would_refuse_fails_fast_with_exit_code_2(
    listener: socket.socket, name: str
) -> None:
    """`watch --project` names one topic level: the shared grammar refuses it before any connection."""
    host, port = listener.getsockname()
    done = run(["watch", "--plain", "--project", name], f"mqtt://{host}:{port}")
    stderr = done.stderr.decode("utf-8")
    assert done.returncode == 2, stderr
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("cascade-mqtt: error: invalid project")
    assert stderr.isascii()
    with pytest.raises(BlockingIOError):
        listener.accept()
