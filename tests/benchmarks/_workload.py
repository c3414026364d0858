"""What the benchmarks send: realistic telemetry payloads with a sequence number, and the checks that
every message arrived exactly once and in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cascade.connectors.protocol import (
    Constraint,
    ConstraintType,
    TaskState,
    TaskStateEvent,
    TelemetryHeader,
    TelemetryMessage,
    encode_payload,
)

_SEQ_PREFIX = "task-"


def telemetry_payload(seq: int, run_id: str = "run-7f3a9c2e") -> dict[str, Any]:
    """One task-state telemetry message as a dict (about 250 bytes of JSON); `seq` is in the task id."""
    message = TelemetryMessage(
        header=TelemetryHeader(
            ts="2026-01-01T12:00:00.000Z",
            run_id=run_id,
            org_id="acme",
            project_id="etl",
            source="worker-a-4242",
        ),
        body=TaskStateEvent(
            task_id=f"{_SEQ_PREFIX}{seq:07d}",
            task_name="extract",
            state=TaskState.COMPLETED,
            duration_ms=1234.5,
        ),
    )
    return message.to_dict()


def telemetry_payloads(count: int, run_id: str = "run-7f3a9c2e") -> list[dict[str, Any]]:
    """`count` payloads with sequence numbers 0..count-1, built outside any timed region."""
    template = telemetry_payload(0, run_id)
    body = template["body"]
    # Copying the validated template is much faster than building each message through the schema.
    return [
        {**template, "body": {**body, "task_id": f"{_SEQ_PREFIX}{seq:07d}", "metadata": {}}}
        for seq in range(count)
    ]


def encoded(payload: dict[str, Any]) -> bytes:
    """The wire bytes every client sends for `payload` (the same compact JSON the connectors send)."""
    return encode_payload(payload)


def seq_of(payload: dict[str, Any]) -> int:
    """The sequence number carried by a `telemetry_payload`; ValueError/KeyError if it carries none."""
    task_id = payload["body"]["task_id"]
    if not isinstance(task_id, str) or not task_id.startswith(_SEQ_PREFIX):
        raise ValueError(f"not a benchmark payload: {task_id!r}")
    return int(task_id[len(_SEQ_PREFIX) :])


def seq_of_line(line: bytes) -> int:
    """The sequence number in one JSON line (as printed by ``mosquitto_sub``); -1 if unreadable."""
    try:
        return seq_of(json.loads(line))
    except (ValueError, KeyError, TypeError):
        return -1


def control_payload(request_id: int) -> dict[str, Any]:
    """A control command (a concurrency constraint) carrying `request_id`, for round trips."""
    constraint = Constraint(
        id=f"c-{request_id}",
        scope="task:api_call",
        type=ConstraintType.CONCURRENCY,
        params={"limit": 4},
    )
    return {**constraint.to_dict(), "request_id": request_id}


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a subscriber saw for `expected` messages numbered 0..expected-1."""

    expected: int
    received: int
    lost: int
    duplicates: int
    reordered: int
    foreign: int

    @property
    def ok(self) -> bool:
        """Every message exactly once, in order, nothing unexpected."""
        return self.lost == 0 and self.duplicates == 0 and self.reordered == 0 and self.foreign == 0

    def problems(self) -> list[str]:
        """Human-readable problems (empty when `ok`)."""
        out = []
        if self.lost:
            out.append(f"{self.lost} lost")
        if self.duplicates:
            out.append(f"{self.duplicates} duplicated")
        if self.reordered:
            out.append(f"{self.reordered} out of order")
        if self.foreign:
            out.append(f"{self.foreign} unexpected")
        return out


def check_sequence(seqs: Iterable[int], expected: int) -> Delivery:
    """Compare the arrival order `seqs` with 0..expected-1.

    A message arriving after one with a higher number counts as out of order; numbers outside the range
    (or -1, unreadable) count as unexpected.
    """
    seen: set[int] = set()
    received = duplicates = reordered = foreign = 0
    highest = -1
    for seq in seqs:
        received += 1
        if seq < 0 or seq >= expected:
            foreign += 1
            continue
        if seq in seen:
            duplicates += 1
            continue
        seen.add(seq)
        if seq < highest:
            reordered += 1
        else:
            highest = seq
    return Delivery(
        expected=expected,
        received=received,
        lost=expected - len(seen),
        duplicates=duplicates,
        reordered=reordered,
        foreign=foreign,
    )
