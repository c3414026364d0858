"""``cascade-mqtt`` against a hostile world (real Mosquitto, the console script as a subprocess).

- The password comes from a file, a prompt or the environment, and never shows in any output.
- Wire text no terminal may see (lone surrogates, bidi and zero-width controls) is shown escaped;
  nothing from the wire ends ``watch`` or fails ``status``, whatever the terminal's encoding.
- ``watch`` shows its own connection: lost, then restored, across a broker restart.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol import (
    LifecycleEvent,
    LifecycleEventType,
    TaskState,
    TaskStateEvent,
    TelemetryBody,
    TelemetryHeader,
    TelemetryMessage,
    status_topic,
    telemetry_topic,
)

from .conftest import SCRIPT, Probe, WatchProcess, cli_env, run_cli, unique

pytestmark = pytest.mark.mosquitto

SECRET = "Tr0ub4dor/Xk#cd?Pw"  # characters a URL would mangle: only a file, prompt or env can carry it


def assert_one_clean_error_line(stderr: str) -> None:
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("cascade-mqtt: error: ")
    assert "Traceback" not in stderr


@pytest.fixture
def guarded(mosquitto_factory: Callable[..., MosquittoServer]) -> MosquittoServer:
    return mosquitto_factory(users={"alice": SECRET})


# ---------------------------------------------------------------------------------------------
# The password: file, prompt, environment


def test_the_password_comes_from_a_file(guarded: MosquittoServer, tmp_path: Path) -> None:
    url = f"mqtt://alice@127.0.0.1:{guarded.port}"
    good = tmp_path / "good"
    good.write_text(SECRET + "\n")
    done = run_cli("--url", url, "--password-file", str(good), "constraints")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "no constraints in force\n"

    wrong = tmp_path / "wrong"
    wrong.write_text("n0t-" + SECRET + "\r\n")
    done = run_cli("--url", url, "status", "--password-file", str(wrong))
    assert done.returncode == 4
    assert_one_clean_error_line(done.stderr)
    assert "rejected the credentials" in done.stderr
    for leak in ("n0t-", SECRET, "Tr0ub4dor"):
        assert leak not in done.stderr + done.stdout


def test_the_password_comes_from_the_environment(guarded: MosquittoServer) -> None:
    url = f"mqtt://alice@127.0.0.1:{guarded.port}"
    done = run_cli("--url", url, "status", env=cli_env(CASCADE_MQTT_PASSWORD=SECRET))
    assert done.returncode == 0, done.stderr
    done = run_cli("--url", url, "status", env=cli_env(CASCADE_MQTT_PASSWORD="wr0ng-" + SECRET))
    assert done.returncode == 4
    assert_one_clean_error_line(done.stderr)
    assert "wr0ng" not in done.stderr
    assert "Tr0ub4dor" not in done.stderr


def _run_on_a_terminal(argv: list[str], typed: str, env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with a terminal; type `typed` at the password prompt; return (exit code, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, with a terminal
        os.execve(str(SCRIPT), [str(SCRIPT), *argv], env)
    output = b""
    answered = False
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 30)
            assert ready, f"the CLI stopped writing for 30 s: {output!r}"
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"MQTT password for alice: " in output:
                os.write(fd, typed.encode() + b"\n")
                answered = True
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert answered, output
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_the_password_comes_from_a_prompt_without_echo(guarded: MosquittoServer) -> None:
    url = f"mqtt://alice@127.0.0.1:{guarded.port}"
    code, output = _run_on_a_terminal(["--url", url, "--password-prompt", "status"], SECRET, cli_env())
    assert code == 0, output
    assert SECRET not in output  # not echoed
    code, output = _run_on_a_terminal(
        ["--url", url, "--password-prompt", "status"], "bad-" + SECRET, cli_env()
    )
    assert code == 4, output
    lines = [line for line in output.replace("\r", "").splitlines() if line.strip()]
    assert lines[0] == "MQTT password for alice: "
    assert len(lines) == 2
    assert lines[1].startswith("cascade-mqtt: error: ")
    assert "Tr0ub4dor" not in output


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--password-file", "/nonexistent/pw"], "cannot read the password file '/nonexistent/pw'"),
        (["--password-prompt"], "--password-prompt needs a terminal"),
        (["--password-file", "PW", "--url", "mqtt://127.0.0.1:1"], "needs a user name in the URL"),
        (["--password-file", "EMPTY"], "is empty"),
    ],
)
def test_password_problems_exit_2_in_one_line(argv: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "PW").write_text(SECRET)
    (tmp_path / "EMPTY").write_text("\n")
    argv = [str(tmp_path / a) if a in ("PW", "EMPTY") else a for a in argv]
    done = run_cli("--url", "mqtt://alice@127.0.0.1:1", *argv, "status")
    assert done.returncode == 2
    assert_one_clean_error_line(done.stderr)
    assert message in done.stderr
    assert "Tr0ub4dor" not in done.stderr


# ---------------------------------------------------------------------------------------------
# Text from the wire


ENVIRONMENTS = {
    "utf-8": {},
    "ascii": {"PYTHONIOENCODING": "ascii"},
    "C locale": {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},
}


@pytest.fixture
def poisoned_presence(mosquitto: MosquittoServer, probe: Probe) -> Iterator[str]:
    """A retained presence message whose JSON holds a lone surrogate and bidi/zero-width controls."""
    worker = unique("w-poison-")
    raw = (
        b'{"status": "online", "source": "evil\\ud800\\u202egnp.exe\\u200b\\u00e9", '
        b'"ts": "2024-05-01T12:00:00.000Z"}'
    )
    probe.publish(status_topic(worker), raw, retain=True)  # raw bytes, as a foreign client sends them
    yield worker
    probe.publish(status_topic(worker), b"", retain=True)


@pytest.mark.parametrize("environment", list(ENVIRONMENTS))
def test_status_survives_a_poisoned_presence_message(
    mosquitto: MosquittoServer, poisoned_presence: str, environment: str
) -> None:
    env = cli_env(**ENVIRONMENTS[environment])
    done = run_cli("--url", mosquitto.url, "status", env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("evil")]
    assert line.split()[0] in (
        "evil\\ud800\\u202egnp.exe\\u200b\u00e9",
        "evil\\ud800\\u202egnp.exe\\u200b\\xe9",
    )
    listed = run_cli("--url", mosquitto.url, "status", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    sources = [w["source"] for w in json.loads(listed.stdout)]
    assert "evil\ud800\u202egnp.exe\u200b\u00e9" in sources  # the same data, as JSON escapes


def _telemetry(body: TelemetryBody, project: str, run: str) -> tuple[str, dict[str, object]]:
    header = TelemetryHeader(run_id=run, project_id=project, source="w-hostile")
    return telemetry_topic("local", project, run), TelemetryMessage(header, body).to_dict()


@pytest.mark.parametrize("environment", list(ENVIRONMENTS))
def test_watch_keeps_running_through_hostile_text(
    mosquitto: MosquittoServer, probe: Probe, environment: str
) -> None:
    project, run = unique("proj-"), unique("run-")
    watch = WatchProcess(
        "--url", mosquitto.url, "--project", project, "--plain", env=cli_env(**ENVIRONMENTS[environment])
    )
    try:
        watch.wait_ready()
        topic = telemetry_topic("local", project, run)
        header = f'"v": "1.0", "ts": "2024-05-01T12:00:00.000Z", "run_id": "{run}", "org_id": "local", '
        header += f'"project_id": "{project}", "source": "w-hostile"'
        for name in ("lone\\ud800", "bidi\\u202e\\u2066", "zero\\u200b\\ufeffwidth", "caf\\u00e9"):
            body = '"body": {"type": "TaskStateEvent", "task_id": "t", "task_name": "%s", "state": "RUNNING"}'
            body = body.replace("%s", name)
            probe.publish(topic, ("{" + header + ", " + body + "}").encode())
        probe.publish(*_telemetry(TaskStateEvent("t2", "after", TaskState.COMPLETED), project, run))
        probe.publish(*_telemetry(LifecycleEvent(LifecycleEventType.ENGINE_STOPPED), project, run))
        watch.out.wait_for(lambda line: "engine stopped" in line)
        assert watch.process.poll() is None  # still watching
        assert watch.interrupt() == 0
    finally:
        watch.kill()
    names = [line.split(" task ", 1)[1].split(" [", 1)[0] for line in watch.out.lines if " task " in line]
    assert names[:3] == ["lone\\ud800", "bidi\\u202e\\u2066", "zero\\u200b\\ufeffwidth"]
    assert names[3] in ("caf\u00e9", "caf\\xe9")  # escaped only where the terminal cannot show it
    assert names[4] == "after"
    assert "Traceback" not in "\n".join(watch.err.rest())


def test_watch_json_writes_hostile_text_as_json_escapes(mosquitto: MosquittoServer, probe: Probe) -> None:
    project, run = unique("proj-"), unique("run-")
    watch = WatchProcess(
        "--url", mosquitto.url, "--project", project, "--json", env=cli_env(PYTHONIOENCODING="ascii")
    )
    try:
        watch.wait_ready()
        raw = (
            (
                '{"v": "1.0", "ts": "2024-05-01T12:00:00.000Z", "run_id": "@RUN@", '
                '"project_id": "@PROJECT@", '
                '"source": "w", "body": {"type": "TaskStateEvent", "task_id": "t", '
                '"task_name": "x\\ud800\\u202e\\u00e9", "state": "RUNNING"}}'
            )
            .replace("@RUN@", run)
            .replace("@PROJECT@", project)
        )
        probe.publish(telemetry_topic("local", project, run), raw.encode())
        line = watch.out.wait_for(lambda line: '"kind":"task"' in line)
        assert watch.interrupt() == 0
    finally:
        watch.kill()
    assert json.loads(line)["task_name"] == "x\ud800\u202e\u00e9"


# ---------------------------------------------------------------------------------------------
# watch shows its own connection


def test_watch_reports_losing_and_regaining_its_connection(
    mosquitto_factory: Callable[..., MosquittoServer],
) -> None:
    server = mosquitto_factory()
    project, run = unique("proj-"), unique("run-")
    watch = WatchProcess("--url", server.url, "--project", project, "--plain")
    try:
        watch.wait_ready()
        server.stop()
        lost = watch.out.wait_for(lambda line: "connection to the broker lost" in line)
        assert lost.endswith(
            "connection to the broker lost; reconnecting (telemetry sent meanwhile is missed)"
        )
        server.start()
        restored = watch.out.wait_for(lambda line: "connection to the broker restored" in line, timeout=30)
        assert "(reconnect 1): telemetry sent during the gap was missed" in restored
        probe = Probe(server)
        try:
            probe.publish(*_telemetry(TaskStateEvent("t1", "extract", TaskState.RUNNING), project, run))
        finally:
            probe.close()
        watch.out.wait_for(lambda line: "task extract [t1] RUNNING" in line)
        assert watch.interrupt() == 0
    finally:
        watch.kill()


def test_watch_json_reports_its_connection_too(mosquitto_factory: Callable[..., MosquittoServer]) -> None:
    server = mosquitto_factory()
    watch = WatchProcess("--url", server.url, "--json", "--project", unique("proj-"))
    try:
        watch.wait_ready()
        server.stop()
        lost = json.loads(watch.out.wait_for(lambda line: '"kind":"connection"' in line))
        server.start()
        restored = json.loads(watch.out.wait_for(lambda line: '"status":"connected"' in line, timeout=30))
        assert watch.interrupt() == 0
    finally:
        watch.kill()
    assert (lost["status"], lost["reconnects"], lost["gap_s"]) == ("reconnecting", 0, None)
    assert restored["reconnects"] == 1
    assert restored["gap_s"] > 0
    assert restored["outage_s"] == restored["gap_s"]


def test_the_cli_client_id_is_clean(mosquitto_factory: Callable[..., MosquittoServer]) -> None:
    server = mosquitto_factory()
    for _ in range(2):
        done = run_cli("--url", server.url, "constraints")
        assert done.returncode == 0, done.stderr
    log = server.log_text()
    ids = set(re.findall(r"New client connected from \S+ as (\S+)", log))
    assert len(ids) == 2, log  # a fresh id per command: two commands never knock each other off
    for client_id in ids:
        assert re.fullmatch(r"cascade-mqtt-cli-\S+-[0-9a-f]{8}", client_id), client_id
        assert not client_id.startswith("cascade-cascade")
