"""The package itself: zero runtime dependencies, a complete and honest public API."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import cascade.connectors.protocol as protocol
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE_DIR = SRC / "cascade" / "connectors" / "protocol"
MODULES = sorted(p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__")

# Runs with `python -I -S`: no site-packages, no user site, no PYTHON* variables, no cwd on sys.path;
# only the protocol package's own src folder is importable besides the standard library.
SCRIPT = r"""
import json, sys
sys.path.insert(0, SRC)
before = set(sys.modules)

import asyncio
from cascade.connectors.protocol import (
    CONSTRAINTS_FILTER, Constraint, ConstraintBook, ConstraintType, LifecycleEvent, LifecycleEventType,
    StatusMessage, SubscriptionIndex, TaskState, TaskStateEvent, TelemetryHeader, TelemetryMessage,
    PayloadError, TopicError, SchemaError, Connector, ConnectorStats,
    constraint_topic, decode_payload, encode_payload, scope_from_topic, status_topic, telemetry_topic,
    topic_matches, validate_filter, parse_rate, codec_name,
)
assert codec_name() == "stdlib"  # no msgspec here: the automatic choice is the standard library's

topic = telemetry_topic("acme", "etl", "run-1")
assert topic_matches("cascade/telemetry/+/+/+/events", topic)
assert validate_filter(CONSTRAINTS_FILTER) == CONSTRAINTS_FILTER
assert scope_from_topic(constraint_topic("task:api")) == "task:api"
try:
    constraint_topic("task:a/b")
except TopicError:
    pass
else:
    raise AssertionError("scope injection accepted")

message = TelemetryMessage(
    TelemetryHeader(run_id="run-1", source="w"), TaskStateEvent("t1", "extract", TaskState.RUNNING)
)
wire = encode_payload(message.to_dict())
assert TelemetryMessage.from_dict(decode_payload(wire)) == message
assert encode_payload({}) == b"" and decode_payload(b"") == {}
try:
    decode_payload(b"[1]")
except PayloadError:
    pass
status = StatusMessage("online", "w")
assert StatusMessage.from_dict(decode_payload(encode_payload(status.to_dict()))) == status

index = SubscriptionIndex()
index.add("cascade/#", "all")
index.add("cascade/status/+", "status")
assert sorted(index.match(status_topic("w"))) == ["all", "status"]

book = ConstraintBook(clock=lambda: 0.0)
book.apply(constraint_topic("global"), Constraint("c", "global", ConstraintType.PAUSE).to_dict())
assert book.is_paused("anything")
asyncio.run(book.on_message(constraint_topic("global"), {}))
assert not book.is_paused("anything")
assert parse_rate("10/s") == 10.0
assert ConnectorStats().as_dict()["published"] == 0

import logging
from cascade.connectors.protocol.core import (
    Backoff, ConnectorState, ContextGuard, Delivery, OutboundBuffer, Outgoing, Presence, StateMachine,
    TopicCache, check_seconds, default_source,
)

machine = StateMachine()
machine.to(ConnectorState.CONNECTING)
assert 0.1 <= Backoff(0.1, 1.0).next_delay() <= 0.2
core_stats = ConnectorStats()
buffer = OutboundBuffer(1, core_stats, logging.getLogger("x"))
buffer.append_qos0(Outgoing("a", b"", False, None))
buffer.append_qos0(Outgoing("b", b"", False, None))
assert core_stats.dropped == 1
assert asyncio.run(Delivery(core_stats, logging.getLogger("x")).deliver("a", b"{}", [])) is True
assert Presence(default_source()).online()
ContextGuard("x").enter()
TopicCache().add("a/b")
try:
    check_seconds("flush_timeout", float("nan"))
except ValueError:
    pass
else:
    raise AssertionError("NaN accepted")

loaded = sorted(set(sys.modules) - before)
print(json.dumps({
    "loaded": loaded,
    "file": sys.modules["cascade.connectors.protocol"].__file__,
    "path": sys.path,
}))
"""


def _allowed(name: str) -> bool:
    top = name.split(".", 1)[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names or name == "__main__":
        return True
    return name in ("cascade", "cascade.connectors") or name.split(".")[:3] == [
        "cascade",
        "connectors",
        "protocol",
    ]


def test_works_with_the_standard_library_only() -> None:
    code = f"SRC = {str(SRC)!r}\n" + SCRIPT
    # Without CASCADE_CODEC: the codec chooses by itself (the fast-codec run sets it to "fast").
    env = {name: value for name, value in os.environ.items() if name != "CASCADE_CODEC"}
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert Path(report["file"]).resolve() == PACKAGE_DIR / "__init__.py"
    assert not any("site-packages" in entry for entry in report["path"])
    loaded: list[str] = report["loaded"]
    assert "cascade.connectors.protocol.constraints" in loaded
    assert "cascade.connectors.protocol.core.delivery" in loaded
    foreign = [name for name in loaded if not _allowed(name)]
    assert foreign == []


def test_allowed_modules_filter_is_not_vacuous() -> None:
    assert _allowed("json")
    assert _allowed("cascade.connectors.protocol.codec")
    assert not _allowed("hypothesis")
    assert not _allowed("cascade.connectors.mqtt")
    assert not _allowed("aiomqtt")


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"cascade.connectors.protocol.{name}")


@pytest.mark.parametrize("name", MODULES)
def test_every_module_declares_all_and_every_name_exists(name: str) -> None:
    module = _module(name)
    names = module.__all__
    assert len(names) == len(set(names)), "duplicate names in __all__"
    missing = [n for n in names if not hasattr(module, n)]
    assert missing == []


def test_package_all_names_exist_and_are_unique() -> None:
    assert len(protocol.__all__) == len(set(protocol.__all__))
    assert [n for n in protocol.__all__ if not hasattr(protocol, n)] == []


def test_package_re_exports_every_public_name_of_its_modules() -> None:
    public = {n for name in MODULES if not name.startswith("_") for n in _module(name).__all__}
    assert public - set(protocol.__all__) == set()


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from cascade.connectors.protocol import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(protocol.__all__)


def test_py_typed_ships_in_the_leaf_package() -> None:
    assert (PACKAGE_DIR / "py.typed").is_file()
    assert not (SRC / "cascade" / "py.typed").exists()
    assert not (SRC / "cascade" / "connectors" / "py.typed").exists()


def test_namespace_levels_have_no_init() -> None:
    assert not (SRC / "cascade" / "__init__.py").exists()
    assert not (SRC / "cascade" / "connectors" / "__init__.py").exists()
    import cascade
    import cascade.connectors

    assert getattr(cascade, "__file__", None) is None
    assert getattr(cascade.connectors, "__file__", None) is None


def test_no_runtime_dependencies_declared() -> None:
    import tomllib

    pyproject = tomllib.loads((SRC.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["dependencies"] == []
