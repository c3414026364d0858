"""docs/protocol.md is real: every JSON example decodes with its schema, every Python example runs.

Each ```json block must directly follow a marker comment:
``<!-- wire: SCHEMA [BODY] on TOPIC [error FIELD] -->`` where SCHEMA is TelemetryMessage (with the
body class name), Constraint, StatusMessage or ``clear`` (the empty payload).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cascade.connectors.protocol as protocol
import pytest
from cascade.connectors.protocol import (
    CONSTRAINTS_FILTER,
    STATUS_FILTER,
    TELEMETRY_FILTER,
    Constraint,
    ConstraintBook,
    ConstraintType,
    SchemaError,
    StatusMessage,
    TelemetryMessage,
    decode_payload,
    encode_payload,
    errors,
    scope_from_topic,
    source_from_status_topic,
    telemetry_topic,
    topic_matches,
    validate_topic,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
MARKER = re.compile(
    r"<!-- wire: (?P<schema>\w+)(?: (?P<body>\w+))? on (?P<topic>\S+)(?: error (?P<field>[\w.]+))? -->\n$"
)


@dataclass(frozen=True)
class Example:
    line: int
    schema: str
    body: str | None
    topic: str
    error_field: str | None
    payload: dict[str, Any]


def _blocks(language: str) -> list[tuple[int, str, str]]:
    """(line number, text before the fence, block) for every fenced block of `language`."""
    text = DOC.read_text(encoding="utf-8")
    out = []
    for match in FENCE.finditer(text):
        if match.group(1) == language:
            line = text.count("\n", 0, match.start()) + 1
            out.append((line, text[: match.start()], match.group(2)))
    return out


def _examples() -> list[Example]:
    examples = []
    for line, before, block in _blocks("json"):
        last_line = before.splitlines(keepends=True)[-1] if before else ""
        marker = MARKER.search(last_line)
        assert marker is not None, (
            f"docs/protocol.md:{line}: json block without a '<!-- wire: ... -->' marker"
        )
        payload = json.loads(block)
        assert isinstance(payload, dict), f"docs/protocol.md:{line}: not a JSON object"
        examples.append(
            Example(line, marker["schema"], marker["body"], marker["topic"], marker["field"], payload)
        )
    return examples


EXAMPLES = _examples()


def test_the_doc_has_every_kind_of_example() -> None:
    kinds = set()
    for example in EXAMPLES:
        if example.error_field is not None:
            kinds.add("error")
        elif example.schema == "TelemetryMessage":
            kinds.add(f"telemetry:{example.body}")
        elif example.schema == "Constraint":
            kinds.add(f"constraint:{example.payload['type']}")
        elif example.schema == "StatusMessage":
            kinds.add(f"status:{example.payload['status']}")
        else:
            kinds.add(example.schema)
    assert kinds == {
        "telemetry:TaskStateEvent",
        "telemetry:LifecycleEvent",
        "telemetry:ResourceEvent",
        "telemetry:UnknownEvent",
        *(f"constraint:{t.value}" for t in ConstraintType),
        "clear",
        "status:online",
        "status:offline",
        "error",
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"line{e.line}-{e.schema}" for e in EXAMPLES])
def test_json_example(example: Example) -> None:
    validate_topic(example.topic)
    payload = example.payload
    # Survives the codec unchanged.
    assert decode_payload(encode_payload(payload)) == payload
    book = ConstraintBook(clock=lambda: 0.0)

    if example.error_field is not None:
        decoders: dict[str, Callable[[Mapping[str, Any]], object]] = {
            "TelemetryMessage": TelemetryMessage.from_dict,
            "Constraint": Constraint.from_dict,
            "StatusMessage": StatusMessage.from_dict,
        }
        with pytest.raises(SchemaError) as info:
            decoders[example.schema](payload)
        assert info.value.field == example.error_field
        if example.schema == "Constraint":
            with pytest.raises(SchemaError):
                book.apply(example.topic, payload)
            assert len(book) == 0
        return

    obj: TelemetryMessage | Constraint | StatusMessage
    if example.schema == "TelemetryMessage":
        assert topic_matches(TELEMETRY_FILTER, example.topic)
        obj = TelemetryMessage.from_dict(payload)
        assert type(obj.body).__name__ == example.body
        header = obj.header
        assert telemetry_topic(header.org_id, header.project_id, header.run_id) == example.topic
    elif example.schema == "Constraint":
        assert topic_matches(CONSTRAINTS_FILTER, example.topic)
        obj = Constraint.from_dict(payload)
        assert scope_from_topic(example.topic) == obj.scope
        assert book.apply(example.topic, payload) == obj
        assert book.get(obj.scope) == obj or obj.is_expired(0.0)
    elif example.schema == "StatusMessage":
        assert topic_matches(STATUS_FILTER, example.topic)
        obj = StatusMessage.from_dict(payload)
        assert source_from_status_topic(example.topic) == obj.source
    elif example.schema == "clear":
        assert payload == {}
        assert encode_payload(payload) == b""
        scope = scope_from_topic(example.topic)
        book.set(Constraint("x", scope, ConstraintType.PAUSE))
        assert book.apply(example.topic, payload) is None
        assert book.get(scope) is None
        return
    else:
        pytest.fail(f"docs/protocol.md:{example.line}: unknown schema {example.schema!r}")

    # The doc shows exactly what goes on the wire: same fields, same order, same values.
    assert obj.to_dict() == payload
    assert encode_payload(obj.to_dict()) == encode_payload(payload)


PYTHON_BLOCKS = _blocks("python")


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[f"line{b[0]}" for b in PYTHON_BLOCKS])
def test_python_example_runs(block: tuple[int, str, str]) -> None:
    line, _, code = block
    namespace: dict[str, Any] = {"__name__": f"docs_protocol_line{line}"}
    exec(compile(code, f"docs/protocol.md:{line}", "exec"), namespace)


def test_there_are_python_examples() -> None:
    assert len(PYTHON_BLOCKS) >= 3


def test_documented_filter_values_are_the_real_ones() -> None:
    text = DOC.read_text(encoding="utf-8")
    found = dict(re.findall(r"`([A-Z_]+_FILTER)` = `([^`]+)`", text))
    assert found == {
        "TELEMETRY_FILTER": TELEMETRY_FILTER,
        "CONSTRAINTS_FILTER": CONSTRAINTS_FILTER,
        "STATUS_FILTER": STATUS_FILTER,
    }


def test_every_constraint_book_method_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    public = [name for name, _ in inspect.getmembers(ConstraintBook) if not name.startswith("_")]
    assert public, "ConstraintBook has no public methods?"
    assert [name for name in public if f"{name}(" not in text] == []


def test_every_error_type_is_documented_with_its_attributes() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")}
    for name in errors.__all__:
        cls = getattr(protocol, name)
        if not inspect.isclass(cls):
            continue
        row = next((r for key, r in rows.items() if key.startswith(f"`{name}`")), None)
        assert row is not None, f"{name} is missing from the errors table"
        if "__init__" not in vars(cls):
            continue
        for attribute in inspect.signature(cls.__init__).parameters:
            if attribute != "self":
                assert f"`{attribute}`" in row, f"{name}.{attribute} is not documented"
