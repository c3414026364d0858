"""The ``cascade-mqtt`` console script against RabbitMQ 3.10 with nothing but a URL (it negotiates 3.1.1).

RabbitMQ never replays retained messages to wildcard subscriptions (docs/brokers.md), so ``constraints``
and ``status``, which subscribe to ``cascade/constraints/#`` and ``cascade/status/#``, list only what
arrives live; ``pause``'s retained constraint is checked on its exact topic with a plain client.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cascade.connectors.protocol import Constraint, ConstraintType, constraint_topic

from tests.brokers._paho import ProbeClient, unique

SCRIPT = Path(sys.executable).with_name("cascade-mqtt")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"{SCRIPT} is missing: pip install -e packages/cascade-connector-mqtt"
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=90, check=False)


def test_pause_constraints_status_and_resume_work_against_rabbitmq(rabbitmq: Any) -> None:
    url = rabbitmq.url
    scope = unique("task:rmq").replace("-", "")
    done = _cli("--url", url, "pause", scope, "--ttl", "90")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"paused {scope} (expires in 1m 30s)\n"
    with ProbeClient(rabbitmq.host, rabbitmq.port, "3.1.1") as probe:
        probe.subscribe(constraint_topic(scope))  # an exact filter: RabbitMQ replays its retained state
        probe.wait_for(lambda: bool(probe.received(constraint_topic(scope))), "the retained pause")
        retained = probe.received(constraint_topic(scope))[0]
        constraint = Constraint.from_dict(json.loads(retained.payload))
        assert (constraint.scope, constraint.type) == (scope, ConstraintType.PAUSE)

    listed = _cli("--url", url, "constraints", "--json")
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
    status = _cli("--url", url, "status")
    assert status.returncode == 0, status.stderr

    done = _cli("--url", url, "resume", scope)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"resumed {scope} (its pause is cleared)\n"
