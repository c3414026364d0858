"""docs/engine-quickstart.md is real: it quotes whole files of docs/examples/quickstart/, and they run.

Every ```python block on the page follows a ``<!-- file: PATH -->`` marker and equals that file, so
every snippet is complete (imports included). The files are copied into a folder outside the
workspace and run there as a reader would: pytest on ``test_my_engine.py`` (the in-memory fake),
``watch_runs.py`` and ``run_etl.py`` against a private Mosquitto. The engine's behaviour under
pauses, concurrency and rate limits, and its telemetry, are checked in-process below.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol import (
    TELEMETRY_FILTER,
    Constraint,
    ConstraintBook,
    ConstraintType,
    LifecycleEvent,
    LifecycleEventType,
    RunningTask,
    TaskState,
    TaskStateEvent,
    constraint_topic,
    decode_telemetry,
)
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector, Recorder

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "engine-quickstart.md"
QUICKSTART = ROOT / "docs" / "examples" / "quickstart"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!-- file: (?P<path>\S+) -->\n$")


def _load_engine() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quickstart_my_engine", QUICKSTART / "my_engine.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ENGINE = _load_engine()
if TYPE_CHECKING:
    from my_engine import run_engine
else:
    run_engine = ENGINE.run_engine


def test_every_python_block_is_a_whole_quickstart_file() -> None:
    text = PAGE.read_text(encoding="utf-8")
    quoted = []
    for match in FENCE.finditer(text):
        if match.group(1) != "python":
            continue
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].splitlines(keepends=True)
        marker = MARKER.search(before[-1] if before else "")
        assert marker is not None, f"{PAGE.name}:{line}: python block without a '<!-- file: ... -->' marker"
        path = ROOT / marker["path"]
        assert match.group(2) == path.read_text(encoding="utf-8"), f"{PAGE.name}:{line} differs from {path}"
        quoted.append(path.name)
    assert sorted(quoted) == sorted(p.name for p in QUICKSTART.glob("*.py"))
    assert len(quoted) == 4


def _copy_quickstart(tmp_path: Path) -> Path:
    folder = tmp_path / "my-project"
    folder.mkdir()
    for path in QUICKSTART.glob("*.py"):
        shutil.copy(path, folder / path.name)
    return folder


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


@pytest.mark.slow
def test_the_test_file_passes_with_pytest_in_a_folder_of_its_own(tmp_path: Path) -> None:
    folder = _copy_quickstart(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_engine.py"],
        cwd=folder, env=_clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.slow
@pytest.mark.mosquitto
@pytest.mark.asyncio
async def test_the_watcher_sees_what_the_production_script_runs(
    tmp_path: Path, mosquitto_factory: Callable[..., MosquittoServer]
) -> None:
    server = mosquitto_factory()
    folder = _copy_quickstart(tmp_path)
    env = _clean_env(CASCADE_MQTT_URL=server.url)
    watch = await asyncio.create_subprocess_exec(
        sys.executable, "watch_runs.py", cwd=folder, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert watch.stdout is not None
        first = await asyncio.wait_for(watch.stdout.readline(), 60)
        assert first == b"watching\n"
        etl = await asyncio.create_subprocess_exec(
            sys.executable, "run_etl.py", cwd=folder, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(etl.communicate(), 60)
        assert etl.returncode == 0, err.decode()
        assert out.decode() == "{'run-42-0': 'COMPLETED', 'run-42-1': 'COMPLETED', 'run-42-2': 'COMPLETED'}\n"
        watched, werr = await asyncio.wait_for(watch.communicate(), 60)
        assert watch.returncode == 0, werr.decode()
    finally:
        if watch.returncode is None:
            watch.kill()
            await watch.wait()
    lines = watched.decode().splitlines()
    assert len(lines) == 9
    assert lines[:3] == [f"etl/run-42 {name}: PENDING" for name in ("extract", "transform", "load")]
    assert sorted(lines[3:]) == sorted(
        f"etl/run-42 {name}: {state}" for name in ("extract", "transform", "load")
        for state in ("RUNNING", "COMPLETED")
    )


# --- the engine's behaviour -------------------------------------------------------------------------


class Work:
    """Work that records how many tasks run at once and when each started (Unix seconds)."""

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.fail = fail
        self.now = 0
        self.most = 0
        self.started: list[tuple[str, float]] = []

    async def __call__(self, name: str) -> None:
        self.started.append((name, time.time()))
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            for _ in range(3):
                await asyncio.sleep(0)  # yield: the engine may start more while this one runs
            if name in self.fail:
                raise RuntimeError(f"{name} broke")
        finally:
            self.now -= 1


def constraint(scope: str, kind: ConstraintType, **params: Any) -> Constraint:
    return Constraint(id=f"c-{scope}", scope=scope, type=kind, params=params)


@pytest.mark.asyncio
async def test_a_concurrency_limit_caps_the_tasks_running_at_once() -> None:
    broker = InMemoryBroker()
    work = Work()
    async with InMemoryConnector(broker) as operator:
        cap = constraint("project:etl", ConstraintType.CONCURRENCY, limit=2)
        await operator.publish(constraint_topic("project:etl"), cap.to_dict(), qos=1, retain=True)
        states = await run_engine(
            InMemoryConnector(broker), ["t"] * 8, work, project="etl", run_id="r", source="w", workers=6
        )
    assert list(states.values()) == [TaskState.COMPLETED] * 8
    assert work.most == 2
    await broker.close()


@pytest.mark.asyncio
async def test_without_limits_the_engine_uses_its_workers() -> None:
    broker = InMemoryBroker()
    work = Work()
    connector = InMemoryConnector(broker)
    await run_engine(connector, ["t"] * 8, work, project="p", run_id="r", source="w", workers=3)
    assert work.most == 3
    await broker.close()


@pytest.mark.asyncio
async def test_a_rate_limit_spaces_the_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the rate limit spaces is the engine's starts as the book records them (`book.started`);
    # the work itself begins after an await (the RUNNING telemetry), which a loaded machine may
    # delay by a different amount for each task, so its own clock readings would not be spaced.
    starts: list[float] = []

    class RecordingBook(ConstraintBook):
        def started(
            self, task: str, project: str | None = None, extra_scopes: Iterable[str] = ()
        ) -> RunningTask:
            running = super().started(task, project, extra_scopes)
            starts.append(running.started_at)
            return running

    monkeypatch.setattr(ENGINE, "ConstraintBook", RecordingBook)
    broker = InMemoryBroker()
    work = Work()
    async with InMemoryConnector(broker) as operator:
        limit = constraint("task:call", ConstraintType.RATE_LIMIT, rate="20/s")  # one start per 50 ms
        await operator.publish(constraint_topic("task:call"), limit.to_dict(), qos=1, retain=True)
        await run_engine(InMemoryConnector(broker), ["call"] * 4, work, project="p", run_id="r", source="w")
    assert len(work.started) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert len(gaps) == 3
    assert min(gaps) >= 0.05 - 0.002  # the clock's float rounding only
    await broker.close()


@pytest.mark.asyncio
async def test_a_failing_task_is_reported_and_the_run_goes_on() -> None:
    broker = InMemoryBroker()
    events = Recorder()
    async with InMemoryConnector(broker) as watcher:
        await watcher.subscribe(TELEMETRY_FILTER, events)
        states = await run_engine(
            InMemoryConnector(broker), ["a", "b"], Work(fail=frozenset({"a"})),
            project="p", run_id="r", source="w",
        )
        assert states == {"r-0": TaskState.FAILED, "r-1": TaskState.COMPLETED}
        await broker.settle()
    bodies = [decode_telemetry(topic, payload).body for topic, payload in events.messages]
    assert bodies[0] == LifecycleEvent(LifecycleEventType.ENGINE_STARTED)
    assert bodies[-1] == LifecycleEvent(LifecycleEventType.ENGINE_STOPPED)
    failed = [b for b in bodies if isinstance(b, TaskStateEvent) and b.state is TaskState.FAILED]
    assert [(b.task_id, b.error) for b in failed] == [("r-0", "RuntimeError: a broke")]
    assert len(bodies) == 2 + 3 * 2  # started and stopped; PENDING, RUNNING and the end of each task
    await broker.close()


@pytest.mark.asyncio
@pytest.mark.mosquitto
async def test_the_engine_obeys_retained_constraints_over_mqtt(mosquitto: MosquittoServer) -> None:
    project = f"p{time.monotonic_ns()}"
    scope = f"project:{project}"
    work = Work()
    async with MqttConnector.from_url(mosquitto.url) as operator:
        cap = constraint(scope, ConstraintType.CONCURRENCY, limit=1)
        await operator.publish(constraint_topic(scope), cap.to_dict(), qos=1, retain=True)
        try:
            states = await run_engine(
                MqttConnector.from_url(mosquitto.url), ["a", "b", "c"], work,
                project=project, run_id="r", source="w",
            )
        finally:
            await operator.publish(constraint_topic(scope), {}, qos=1, retain=True)  # clean up
    assert list(states.values()) == [TaskState.COMPLETED] * 3
    assert work.most == 1
    assert [name for name, _ in work.started] == ["a", "b", "c"]
