"""The real ``cascade-mqtt`` console script against a real Mosquitto (subprocess tests)."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cascade.connectors.mqtt.mosquitto import MosquittoServer, TlsFiles, free_port
from cascade.connectors.protocol import (
    Constraint,
    ConstraintType,
    LifecycleEvent,
    LifecycleEventType,
    StatusMessage,
    TaskState,
    TaskStateEvent,
    TelemetryBody,
    TelemetryHeader,
    TelemetryMessage,
    constraint_topic,
    status_topic,
    telemetry_topic,
)

from .conftest import SCRIPT, Probe, Received, WatchProcess, cli_env, run_cli, unique

pytestmark = pytest.mark.mosquitto


def on(topic: str) -> Callable[[Received], bool]:
    return lambda message: message.topic == topic


def assert_one_clean_error_line(stderr: str) -> None:
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("cascade-mqtt: error: ")
    assert "Traceback" not in stderr


# ---------------------------------------------------------------------------------------------
# pause / resume / limit: retained constraints, qos 1, seen by an independent subscriber


def test_pause_publishes_a_retained_constraint_then_resume_clears_it(
    mosquitto: MosquittoServer, probe: Probe
) -> None:
    scope = unique("task:cli-")
    topic = constraint_topic(scope)
    probe.subscribe(topic)
    before = time.time()
    done = run_cli("--url", mosquitto.url, "pause", scope, "--ttl", "90")
    after = time.time()
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"paused {scope} (expires in 1m 30s)\n"
    assert done.stderr == ""
    live = probe.expect(on(topic))
    constraint = Constraint.from_dict(live.json())
    assert (constraint.scope, constraint.type, constraint.params) == (scope, ConstraintType.PAUSE, {})
    assert constraint.expires_at is not None
    assert before + 90 <= constraint.expires_at <= after + 90

    late = Probe(mosquitto)  # a worker that starts later sees the pause: it is retained
    try:
        late.subscribe(topic)
        retained = late.expect(on(topic))
        assert retained.retain
        assert retained.json() == live.json()
    finally:
        late.close()

    done = run_cli("--url", mosquitto.url, "resume", scope)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"resumed {scope} (its pause is cleared)\n"
    cleared = probe.expect(on(topic))
    assert cleared.payload == b""
    listed = run_cli("--url", mosquitto.url, "constraints", "--json")
    assert scope not in [c["scope"] for c in json.loads(listed.stdout)]


def test_pause_without_ttl_never_expires(mosquitto: MosquittoServer, probe: Probe) -> None:
    scope = unique("project:cli-")
    probe.subscribe(constraint_topic(scope))
    done = run_cli("--url", mosquitto.url, "pause", scope)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"paused {scope} (until resumed)\n"
    assert probe.expect(on(constraint_topic(scope))).json()["expires_at"] is None
    assert run_cli("--url", mosquitto.url, "resume", scope).returncode == 0


@pytest.mark.parametrize(
    ("option", "value", "params", "said"),
    [
        ("--concurrency", "3", {"limit": 3}, "to 3 running tasks"),
        ("--rate", "10/s", {"rate": "10/s"}, "to 10/s task starts"),
        ("--rate", "5/m", {"rate": "5/m"}, "to 5/m task starts"),
    ],
)
def test_limit_publishes_concurrency_or_rate(
    mosquitto: MosquittoServer, probe: Probe, option: str, value: str, params: dict[str, Any], said: str
) -> None:
    scope = unique("task:lim-")
    probe.subscribe(constraint_topic(scope))
    done = run_cli("limit", scope, option, value, "--ttl", "30", "--url", mosquitto.url)  # options after too
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"limited {scope} {said} (expires in 30s)\n"
    constraint = Constraint.from_dict(probe.expect(on(constraint_topic(scope))).json())
    expected_type = ConstraintType.CONCURRENCY if option == "--concurrency" else ConstraintType.RATE_LIMIT
    assert (constraint.type, constraint.params) == (expected_type, params)
    assert run_cli("resume", scope, "--url", mosquitto.url).returncode == 0


def test_the_url_comes_from_the_environment(mosquitto: MosquittoServer, probe: Probe) -> None:
    scope = unique("task:env-")
    probe.subscribe(constraint_topic(scope))
    done = run_cli("pause", scope, env=cli_env(CASCADE_MQTT_URL=mosquitto.url))
    assert done.returncode == 0, done.stderr
    assert probe.expect(on(constraint_topic(scope))).json()["scope"] == scope
    # --url wins over the environment
    port = free_port()
    done = run_cli(
        "--url", f"mqtt://127.0.0.1:{port}", "resume", scope, env=cli_env(CASCADE_MQTT_URL=mosquitto.url)
    )
    assert done.returncode == 3
    assert run_cli("resume", scope, env=cli_env(CASCADE_MQTT_URL=mosquitto.url)).returncode == 0


# ---------------------------------------------------------------------------------------------
# constraints and status


def test_constraints_lists_scope_type_params_and_time_left(mosquitto: MosquittoServer, probe: Probe) -> None:
    paused, limited = unique("task:list-a-"), unique("task:list-b-")
    probe.publish(
        constraint_topic(paused),
        Constraint("c1", paused, ConstraintType.PAUSE, {}, time.time() + 3600).to_dict(),
        retain=True,
    )
    probe.publish(
        constraint_topic(limited),
        Constraint("c2", limited, ConstraintType.CONCURRENCY, {"limit": 4}).to_dict(),
        retain=True,
    )
    try:
        done = run_cli("--url", mosquitto.url, "constraints")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split() == ["SCOPE", "CONSTRAINT", "PARAMS", "EXPIRES", "IN"]
        row_a = next(line for line in lines if line.startswith(paused))
        row_b = next(line for line in lines if line.startswith(limited))
        assert row_a.split()[1:3] == ["pause", "-"]
        assert re.fullmatch(r"1h 00m|59m [0-5]\ds", " ".join(row_a.split()[3:]))
        assert row_b.split()[1:] == ["concurrency", "4", "limit=4", "never"]

        as_json = json.loads(run_cli("--url", mosquitto.url, "constraints", "--json").stdout)
        mine = {c["scope"]: c for c in as_json if c["scope"] in (paused, limited)}
        assert mine[limited] == {
            "id": "c2",
            "scope": limited,
            "type": "concurrency",
            "params": {"limit": 4},
            "expires_at": None,
            "expires_in": None,
        }
        assert 3500 < mine[paused]["expires_in"] <= 3600
    finally:
        probe.publish(constraint_topic(paused), b"", retain=True)
        probe.publish(constraint_topic(limited), b"", retain=True)


def test_constraints_skips_unreadable_retained_messages_with_a_warning(
    mosquitto: MosquittoServer, probe: Probe
) -> None:
    bad = unique("task:bad-")
    probe.publish(constraint_topic(bad), b"{not json", retain=True)
    try:
        done = run_cli("--url", mosquitto.url, "constraints", "--json")
        assert done.returncode == 0
        assert bad not in done.stdout
        json.loads(done.stdout)
    finally:
        probe.publish(constraint_topic(bad), b"", retain=True)


def _stamp(seconds_ago: float) -> str:
    """An ISO 8601 UTC timestamp `seconds_ago` before now, as a worker writes it."""
    return (
        datetime.fromtimestamp(time.time() - seconds_ago, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def test_status_lists_workers_with_the_age_of_their_presence(
    mosquitto: MosquittoServer, probe: Probe, watcher_factory: Callable[..., WatchProcess]
) -> None:
    up, down = unique("worker-up-"), unique("worker-down-")
    # Half a unit away from the next display step, so a slow second does not change the text.
    up_ts, down_ts = _stamp(2 * 3600 + 5 * 60 + 30), _stamp(3 * 86400 + 4 * 3600 + 1800)
    probe.publish(status_topic(up), StatusMessage("online", up, up_ts).to_dict(), retain=True)
    probe.publish(status_topic(down), StatusMessage("offline", down, down_ts).to_dict(), retain=True)
    try:
        done = run_cli("--url", mosquitto.url, "status")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split() == ["SOURCE", "STATUS", "SINCE"]
        assert any(line.split() == [up, "online", "(2h", "05m)", up_ts] for line in lines), lines
        assert any(line.split() == [down, "offline", "(3d", "04h", "ago)", down_ts] for line in lines)
        assert lines[-2].endswith("offline")
        assert lines[-1] == f"broker: {mosquitto.url} over MQTT 5"
        assert not any(line.startswith("cascade-mqtt-cli-") for line in lines)

        listed = json.loads(run_cli("--url", mosquitto.url, "status", "--json").stdout)
        (mine,) = [w for w in listed if w["source"] == up]
        assert {k: mine[k] for k in ("status", "source", "ts")} == {
            "status": "online",
            "source": up,
            "ts": up_ts,
        }
        assert 2 * 3600 + 5 * 60 + 30 <= mine["age_s"] < 2 * 3600 + 6 * 60
        everything = json.loads(run_cli("--url", mosquitto.url, "status", "--json", "--all").stdout)
        assert any(w["source"].startswith("cascade-mqtt-cli-") for w in everything)

        watch = watcher_factory("--url", mosquitto.url, "--plain")
        watch.wait_ready()
        line = watch.out.wait_for(lambda line: down in line)
        assert line == f"{down_ts}  worker {down} offline (3d 04h ago)"
        assert watch.interrupt() == 0
    finally:
        probe.publish(status_topic(up), b"", retain=True)
        probe.publish(status_topic(down), b"", retain=True)


# ---------------------------------------------------------------------------------------------
# watch


def _telemetry(body: TelemetryBody, project: str, run: str) -> tuple[str, dict[str, Any]]:
    header = TelemetryHeader(run_id=run, project_id=project, source="w-script")
    return telemetry_topic("local", project, run), TelemetryMessage(header, body).to_dict()


def _script(probe: Probe, project: str, run: str) -> None:
    """A scripted run: start, one task completes, one fails, junk in between, stop."""
    for body in (
        LifecycleEvent(LifecycleEventType.ENGINE_STARTED),
        TaskStateEvent("t1", "extract", TaskState.RUNNING),
        TaskStateEvent("t1", "extract", TaskState.COMPLETED, duration_ms=120.0),
    ):
        probe.publish(*_telemetry(body, project, run))
    probe.publish(telemetry_topic("local", project, run), b"\xff not json")
    probe.publish(telemetry_topic("local", project, run), {"v": "1.0", "body": {}})
    for body in (
        TaskStateEvent("t2", "api_call", TaskState.FAILED, duration_ms=30.0, error="HTTP 503 from upstream"),
        LifecycleEvent(LifecycleEventType.ENGINE_STOPPED),
    ):
        probe.publish(*_telemetry(body, project, run))


@pytest.fixture
def watcher_factory() -> Iterator[Callable[..., WatchProcess]]:
    started: list[WatchProcess] = []

    def start(*args: str) -> WatchProcess:
        process = WatchProcess(*args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def test_watch_plain_prints_one_line_per_event_and_exits_0_on_ctrl_c(
    mosquitto: MosquittoServer, probe: Probe, watcher_factory: Callable[..., WatchProcess]
) -> None:
    project, run = unique("proj-"), unique("run-")
    other = unique("proj-")
    worker = unique("worker-")
    watch = watcher_factory("--url", mosquitto.url, "--project", project, "--plain")
    watch.wait_ready()
    probe.publish(*_telemetry(TaskStateEvent("x", "noise", TaskState.RUNNING), other, run))  # filtered out
    probe.publish(status_topic(worker), StatusMessage("online", worker).to_dict(), retain=True)
    _script(probe, project, run)
    watch.out.wait_for(lambda line: "engine stopped" in line)
    assert watch.interrupt() == 0
    lines = [line for line in watch.out.rest() if run in line or worker in line]
    probe.publish(status_topic(worker), b"", retain=True)
    body = [line.split("  ", 1)[1] for line in lines]
    assert re.fullmatch(rf"worker {re.escape(worker)} online \(\ds\)", body[0]), body[0]  # just stamped
    assert body[1:] == [
        f"run {project}/{run}  engine started (w-script)",
        f"run {project}/{run}  task extract [t1] RUNNING",
        f"run {project}/{run}  task extract [t1] COMPLETED 120 ms",
        f"run {project}/{run}  task api_call [t2] FAILED 30 ms: HTTP 503 from upstream",
        f"run {project}/{run}  engine stopped (w-script)",
    ]
    assert not any(other in line for line in watch.out.lines)
    assert "Traceback" not in "\n".join(watch.err.rest())


def test_watch_json_prints_one_object_per_line(
    mosquitto: MosquittoServer, probe: Probe, watcher_factory: Callable[..., WatchProcess]
) -> None:
    project, run = unique("proj-"), unique("run-")
    watch = watcher_factory("--url", mosquitto.url, "--run", run, "--json")
    watch.wait_ready()
    _script(probe, project, run)
    watch.out.wait_for(lambda line: '"ENGINE_STOPPED"' in line)
    assert watch.interrupt() == 0
    events = [json.loads(line) for line in watch.out.rest()]
    mine = [e for e in events if e.get("run_id") == run]
    assert [(e["kind"], e.get("state") or e.get("event")) for e in mine] == [
        ("engine", "ENGINE_STARTED"),
        ("task", "RUNNING"),
        ("task", "COMPLETED"),
        ("task", "FAILED"),
        ("engine", "ENGINE_STOPPED"),
    ]
    failed = mine[3]
    assert failed["error"] == "HTTP 503 from upstream"
    assert failed["task_name"] == "api_call"
    assert failed["project_id"] == project


def test_watch_exits_0_on_sigterm_too(
    mosquitto: MosquittoServer, watcher_factory: Callable[..., WatchProcess]
) -> None:
    watch = watcher_factory("--url", mosquitto.url, "--plain")
    watch.wait_ready()
    watch.process.terminate()
    assert watch.process.wait(15) == 0


# ---------------------------------------------------------------------------------------------
# failures: one line, a distinct exit code, no traceback, no password


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pause", "task:"], "invalid scope 'task:'"),
        (["limit", "global", "--rate", "ten per second"], "invalid rate"),
        (["pause", "global", "--ttl", "0"], "invalid TTL '0'"),
        (["--url", "http://127.0.0.1:1883", "status"], "URL"),
        (["--url", "mqtt://127.0.0.1:99999", "status"], "URL"),
        (["--url", "mqtt://alice:hunter2@127.0.0.1:notaport", "status"], "URL"),
        (["limit", "global"], "one of the arguments --concurrency --rate is required"),
        (["bogus"], "invalid choice"),
    ],
)
def test_bad_input_exits_2(argv: list[str], message: str) -> None:
    done = run_cli(*argv)
    assert done.returncode == 2
    assert done.stdout == ""
    assert_one_clean_error_line(done.stderr)
    assert message in done.stderr
    assert "hunter2" not in done.stderr


def test_unreachable_broker_exits_3() -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    done = run_cli("--url", url, "pause", "global")
    assert done.returncode == 3
    assert_one_clean_error_line(done.stderr)
    assert "cannot reach the broker: " in done.stderr


def test_a_broker_that_never_answers_exits_3() -> None:
    with socket.socket() as silent:  # accepts TCP (backlog) but never speaks MQTT
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        done = run_cli("--url", f"mqtt://127.0.0.1:{port}", "--timeout", "0.5", "status")
    assert done.returncode == 3
    assert_one_clean_error_line(done.stderr)
    assert "answer" in done.stderr


def test_refused_credentials_exit_4_without_printing_the_password(
    mosquitto_factory: Callable[..., MosquittoServer],
) -> None:
    server = mosquitto_factory(users={"alice": "correct-horse"})
    bad = f"mqtt://alice:wr0ng-pa55@127.0.0.1:{server.port}"
    done = run_cli("--url", bad, "pause", "global")
    assert done.returncode == 4
    assert_one_clean_error_line(done.stderr)
    assert "rejected the credentials" in done.stderr
    assert "check the user name and password" in done.stderr
    assert "wr0ng-pa55" not in done.stderr
    good = run_cli("--url", f"mqtt://alice:correct-horse@127.0.0.1:{server.port}", "constraints")
    assert good.returncode == 0, good.stderr


def test_tls_failure_exits_5_and_a_ca_file_fixes_it(
    mosquitto_factory: Callable[..., MosquittoServer], tls_files: TlsFiles
) -> None:
    server = mosquitto_factory(tls=tls_files)
    done = run_cli("--url", f"mqtts://localhost:{server.tls_port}", "status")
    assert done.returncode == 5
    assert_one_clean_error_line(done.stderr)
    assert done.stderr.startswith("cascade-mqtt: error: TLS failed: ")
    assert "ca_file" in done.stderr
    trusted = run_cli("--url", f"mqtts://localhost:{server.tls_port}?ca_file={tls_files.ca_file}", "status")
    assert trusted.returncode == 0, trusted.stderr


def test_a_command_the_broker_refuses_exits_6(mosquitto_factory: Callable[..., MosquittoServer]) -> None:
    # alice may announce presence and read telemetry, but not set constraints.
    acl = (
        "user alice\n"
        "topic readwrite cascade/status/#\n"
        "topic readwrite $cascade/#\n"
        "topic read cascade/telemetry/#\n"
    )
    server = mosquitto_factory(users={"alice": "pa55-w0rd"}, acl=acl)
    done = run_cli("--url", f"mqtt://alice:pa55-w0rd@127.0.0.1:{server.port}", "pause", "global")
    assert done.returncode == 6
    assert_one_clean_error_line(done.stderr)
    assert "Not authorized" in done.stderr
    assert "pa55-w0rd" not in done.stderr


def test_ctrl_c_while_waiting_for_the_broker_exits_130() -> None:
    with socket.socket() as silent:  # accepts TCP but never answers: the command waits for CONNACK
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        silent.settimeout(30)
        process = subprocess.Popen(
            [
                str(SCRIPT),
                "--url",
                f"mqtt://127.0.0.1:{silent.getsockname()[1]}",
                "--timeout",
                "60",
                "pause",
                "global",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        try:
            connection, _ = silent.accept()  # the CLI is connected and waiting inside its event loop
            with connection:
                process.send_signal(signal.SIGINT)
                out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130
    assert out == ""
    # Exactly one line: a connection attempt abandoned mid-CONNACK leaves no paho noise behind
    # (no "Exception ignored ... Event loop is closed" from paho's __del__ at interpreter exit).
    assert err.splitlines() == ["cascade-mqtt: interrupted"]
