"""``cascade-mqtt`` in process: input checks, exit codes, formatting, and the commands over the fake."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import pytest
from cascade.connectors.mqtt._cli import main
from cascade.connectors.mqtt._cli.exitcodes import ExitCode, redact
from cascade.connectors.mqtt._cli.session import reason_code
from cascade.connectors.mqtt._cli.validate import display_url, url_password
from cascade.connectors.mqtt.operator import (
    ResumeOutcome,
    age_seconds,
    describe_command,
    describe_params,
    describe_presence,
    format_age,
    format_constraints,
    format_seconds,
    format_table,
    format_workers,
    read_constraints,
    read_workers,
    resume,
    send_constraint,
    time_left,
)
from cascade.connectors.mqtt.operator import new_constraint as make_constraint
from cascade.connectors.protocol import (
    Constraint,
    ConstraintBook,
    ConstraintType,
    StatusMessage,
    constraint_topic,
    status_topic,
)
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------------------------------------
# Bad input: exit 2, one line, nothing sent (these run before any connection is attempted)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pause", "task:"], "invalid scope 'task:'"),
        (["pause", "nope"], "invalid scope 'nope'"),
        (["resume", "task:a/b"], "invalid scope 'task:a/b'"),
        (["limit", "project:#", "--concurrency", "2"], "invalid scope 'project:#'"),
        (["limit", "global", "--rate", "5/x"], "invalid rate '5/x'"),
        (["limit", "global", "--rate", "0/s"], "invalid rate '0/s'"),
        (["limit", "global", "--concurrency", "0"], "invalid concurrency 0"),
        (["limit", "global", "--concurrency", "two"], "invalid concurrency 'two'"),
        (["pause", "global", "--ttl", "-5"], "invalid TTL '-5'"),
        (["pause", "global", "--ttl", "nan"], "invalid TTL 'nan'"),
        (["pause", "global", "--ttl", "soon"], "invalid TTL 'soon'"),
        (["--timeout", "0", "status"], "invalid timeout '0'"),
        (["watch", "--project", "a/b"], "invalid project 'a/b'"),
        (["watch", "--run", "+"], "invalid run '+'"),
    ],
)
def test_invalid_input_exits_2_with_one_line(argv: list[str], message: str) -> None:
    code, out, err = run(*argv, "--url", "mqtt://127.0.0.1:1")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("cascade-mqtt: error: ")
    assert message in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["limit", "global"],
        ["limit", "global", "--concurrency", "1", "--rate", "1/s"],
        ["watch", "--plain", "--json"],
        ["pause"],
    ],
)
def test_usage_errors_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(*argv)
    captured = capsys.readouterr()  # argparse writes to sys.stderr itself
    assert code == 2
    assert out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("cascade-mqtt: error: ")


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run("--help")
    assert code == 0
    assert "exit codes:" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Helpers


def test_exit_codes_are_distinct() -> None:
    codes = [int(c) for c in ExitCode]
    assert len(codes) == len(set(codes))
    assert [reason_code(r) for r in ("unreachable", "timeout", "auth", "tls", "refused")] == [3, 3, 4, 5, 6]


def test_passwords_are_masked() -> None:
    url = "mqtt://alice:s3cr%40t@broker.example:1884?ca_file=/x"
    assert url_password(url) == "s3cr%40t"
    assert display_url(url) == "mqtt://alice:***@broker.example:1884"
    assert display_url("mqtt://broker") == "mqtt://broker"
    assert display_url("mqtt://[::1]:1883") == "mqtt://[::1]:1883"
    assert url_password("mqtt://bob:pw@host:notaport") == "pw"
    assert "pw" not in display_url("mqtt://bob:pw@host:notaport")
    assert redact("failed for bob:pw", ["pw", None, ""]) == "failed for bob:***"


def test_text_helpers() -> None:
    assert format_table(["A", "BB"], [["xyz", "1"], ["q", ""]]) == "A    BB\nxyz  1\nq"
    assert format_table(["A"], [["x\x1b[2J\ny"]]) == "A\nx\\x1b[2J\\x0ay"
    assert [format_seconds(s) for s in (0, 0.2, 59, 61, 3600 + 61)] == ["0s", "1s", "59s", "1m 01s", "1h 01m"]
    assert time_left(None, 0) == "never"
    assert time_left(100.0, 40.0) == "1m 00s"
    assert time_left(10.0, 40.0) == "0s"
    assert describe_params({}) == "-"
    assert describe_params({"limit": 3}) == "limit=3"


def test_make_and_describe_constraints() -> None:
    pause = make_constraint("global", ConstraintType.PAUSE, ttl=60, clock=lambda: 1000.0)
    assert (pause.scope, pause.type, pause.params, pause.expires_at) == (
        "global",
        ConstraintType.PAUSE,
        {},
        1060.0,
    )
    assert pause.id != make_constraint("global", ConstraintType.PAUSE).id
    assert (
        describe_command(make_constraint("global", ConstraintType.PAUSE)) == "paused global (until resumed)"
    )
    cap = make_constraint("task:api", ConstraintType.CONCURRENCY, {"limit": 3})
    assert describe_command(cap) == "limited task:api to 3 running tasks (until resumed)"
    rate = make_constraint("project:etl", ConstraintType.RATE_LIMIT, {"rate": "10/s"}, ttl=90)
    assert describe_command(rate).startswith("limited project:etl to 10/s task starts (expires in 1m 3")


def test_format_constraints() -> None:
    book = ConstraintBook(clock=lambda: 1000.0)
    assert format_constraints(book, as_json=False, now=1000.0) == "no constraints in force"
    book.set(Constraint("a", "task:api", ConstraintType.CONCURRENCY, {"limit": 3}, expires_at=1090.0))
    book.set(Constraint("b", "global", ConstraintType.PAUSE, {}))
    assert format_constraints(book, as_json=False, now=1000.0).splitlines() == [
        "SCOPE     CONSTRAINT     PARAMS   EXPIRES IN",
        "global    pause          -        never",
        "task:api  concurrency 3  limit=3  1m 30s",
    ]
    items = json.loads(format_constraints(book, as_json=True, now=1000.0))
    assert [(i["scope"], i["type"], i["params"], i["expires_in"]) for i in items] == [
        ("global", "pause", {}, None),
        ("task:api", "concurrency", {"limit": 3}, 90.0),
    ]


def test_format_age_rounds_down_and_grows_units() -> None:
    assert [format_age(s) for s in (-5, 0, 59.99, 60, 3599, 3600, 86399, 86400, 90061)] == [
        "0s",
        "0s",
        "59s",
        "1m 00s",
        "59m 59s",
        "1h 00m",
        "23h 59m",
        "1d 00h",
        "1d 01h",
    ]


def test_describe_presence_says_how_long_online_or_how_long_ago_offline() -> None:
    ts = "2024-05-01T12:00:00.000Z"
    at = datetime.fromisoformat(ts).timestamp()
    assert age_seconds(ts, at + 3.25) == 3.25
    assert describe_presence("online", ts, at + 3) == "online (3s)"
    assert describe_presence("offline", ts, at + 7500) == "offline (2h 05m ago)"
    assert describe_presence("offline", "2024-05-01T12:00:00", at) == "offline"  # no offset: no age
    with pytest.raises(ValueError, match="offset"):
        age_seconds("2024-05-01T12:00:00", at)


def test_format_workers() -> None:
    workers = [
        StatusMessage("online", "w1", "2024-05-01T12:00:00.000Z"),
        StatusMessage("offline", "w2", "2024-05-01T12:00:01.000Z"),
    ]
    now = datetime.fromisoformat("2024-05-01T12:00:01.000Z").timestamp() + 2 * 3600 + 5 * 60 + 12.5
    assert format_workers(workers, as_json=False, now=now).splitlines() == [
        "SOURCE  STATUS                SINCE",
        "w1      online (2h 05m)       2024-05-01T12:00:00.000Z",
        "w2      offline (2h 05m ago)  2024-05-01T12:00:01.000Z",
        "1 online, 1 offline",
    ]
    listed = json.loads(format_workers(workers, as_json=True, now=now))
    assert listed[1] == {**workers[1].to_dict(), "age_s": 7512.5}
    assert listed[0]["age_s"] == 7513.5
    assert format_workers([], as_json=False) == "no workers have announced their presence"


# ---------------------------------------------------------------------------------------------
# The commands over the in-memory connector


@pytest.mark.asyncio
async def test_constraint_commands_round_trip_through_a_broker() -> None:
    broker = InMemoryBroker()
    async with InMemoryConnector(broker, source="cli") as cli:
        pause = make_constraint("task:api", ConstraintType.PAUSE, ttl=60)
        await send_constraint(cli, pause)
        assert broker.retained[constraint_topic("task:api")] == pause.to_dict()
        listing = await read_constraints(cli)
        assert [c.to_dict() for c in listing.book.active()] == [pause.to_dict()]
        assert listing.skipped == []
        done = await resume(cli, "task:api")
        assert (done.outcome, done.constraint) == (ResumeOutcome.CLEARED, pause)
        assert constraint_topic("task:api") not in broker.retained
        assert (await read_constraints(cli)).book.active() == []
        again = await resume(cli, "task:api")
        assert (again.outcome, again.constraint, again.was_in_force) == (ResumeOutcome.NOTHING, None, False)


@pytest.mark.asyncio
async def test_unreadable_retained_messages_are_reported_not_fatal() -> None:
    broker = InMemoryBroker()
    good = Constraint("g", "global", ConstraintType.PAUSE, {})
    async with InMemoryConnector(broker, source="other") as other:
        await other.publish(constraint_topic("global"), good.to_dict(), qos=1, retain=True)
        await other.publish(
            constraint_topic("task:x"), {"id": "b", "scope": "task:x", "type": "warp"}, qos=1, retain=True
        )
        await other.publish(status_topic("w9"), {"status": "maybe"}, qos=1, retain=True)
    async with InMemoryConnector(broker, source="cli") as cli:
        listing = await read_constraints(cli)
        book, problems = listing.book, listing.skipped
        found = await read_workers(cli, hide=lambda s: s == "cli")
        workers, worker_problems = found.workers, found.skipped
    assert [c.scope for c in book.active()] == ["global"]
    assert len(problems) == 1
    assert "cascade/constraints/task/x" in problems[0]
    assert [(w.source, w.status) for w in workers] == [("other", "offline")]
    assert len(worker_problems) == 1


@pytest.mark.asyncio
async def test_status_lists_workers_but_not_the_cli_itself() -> None:
    broker = InMemoryBroker()
    async with InMemoryConnector(broker, source="gone"):
        pass
    async with InMemoryConnector(broker, source="w1"), InMemoryConnector(broker, source="cli") as cli:
        found = await read_workers(cli, hide=lambda s: s == "cli")
    assert [(w.source, w.status) for w in found.workers] == [("gone", "offline"), ("w1", "online")]
    assert found.skipped == []


def test_watch_mode() -> None:
    from cascade.connectors.mqtt._cli.watching import choose_watch_mode

    assert choose_watch_mode(plain=False, as_json=False, terminal=True, rich=True) == "live"
    assert choose_watch_mode(plain=False, as_json=False, terminal=True, rich=False) == "plain"
    assert choose_watch_mode(plain=False, as_json=False, terminal=False, rich=True) == "plain"
    assert choose_watch_mode(plain=True, as_json=False, terminal=True, rich=True) == "plain"
    assert choose_watch_mode(plain=False, as_json=True, terminal=True, rich=True) == "json"


def test_the_cli_never_imports_rich_outside_the_live_table() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['rich'] = None\n"
        "from cascade.connectors.mqtt._cli import main\n"
        "from cascade.connectors.mqtt._cli import app, commands, watching\n"
        "from cascade.connectors import mqtt; from cascade.connectors.mqtt import operator\n"
        "assert 'rich' not in sys.modules or sys.modules['rich'] is None\n"
        "raise SystemExit(main(['pause', 'task:']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr.startswith("cascade-mqtt: error: invalid scope")


# ---------------------------------------------------------------------------------------------
# Where the password comes from (in process; the end-to-end tests are in test_cli_hardening.py)


def test_a_password_file_is_read_literally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade.connectors.mqtt._cli.password import PasswordSource, read_password

    monkeypatch.delenv("CASCADE_MQTT_PASSWORD", raising=False)
    path = tmp_path / "pw"
    path.write_bytes(b" sp/ce#d?@pw \r\nsecond line\n")
    assert read_password(file=str(path), prompt=False, username="u") == (PasswordSource.FILE, " sp/ce#d?@pw ")
    assert read_password(file=None, prompt=False, username="u") == (PasswordSource.URL, None)
    monkeypatch.setenv("CASCADE_MQTT_PASSWORD", "from-env")
    assert read_password(file=None, prompt=False, username="u") == (PasswordSource.ENV, "from-env")
    assert read_password(file=str(path), prompt=False, username="u")[0] is PasswordSource.FILE  # file wins


def test_a_password_file_that_is_not_text_leaks_nothing(tmp_path: Path) -> None:
    from cascade.connectors.mqtt._cli.exitcodes import CliError
    from cascade.connectors.mqtt._cli.password import read_password

    path = tmp_path / "pw"
    path.write_bytes(b"s3cret\xff\xfe")
    with pytest.raises(CliError) as caught:
        read_password(file=str(path), prompt=False, username="u")
    assert caught.value.code is ExitCode.USAGE
    assert "not UTF-8 text" in caught.value.message
    assert caught.value.__cause__ is None  # a UnicodeDecodeError would hold the bytes
    assert caught.value.__suppress_context__
    big = tmp_path / "big"
    big.write_bytes(b"x" * (64 * 1024 + 1))
    with pytest.raises(CliError, match="larger than 64 KiB"):
        read_password(file=str(big), prompt=False, username="u")


def test_the_password_file_reaches_the_connector_and_is_redacted(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("hunter2-from-file\n")
    code, out, err = run("--url", "mqtt://alice@127.0.0.1:1", "--password-file", str(path), "status")
    assert code == 3
    assert "hunter2" not in out + err
