"""Run one package's tests with the packages it must not need made unimportable.

    python tools/run_tests_alone.py protocol [pytest args...]
    python tools/run_tests_alone.py testing  [pytest args...]

``protocol``: runs packages/cascade-connector-protocol/tests with ``cascade.connectors.mqtt``,
``cascade.connectors.testing``, aiomqtt, paho and cryptography blocked (and the testing package's pytest
plugin disabled). ``testing``: runs packages/cascade-connector-testing/tests with the MQTT side blocked.
A test (or conftest) that imports a blocked module fails with ModuleNotFoundError, which proves each
package's tests run on their own. Exits with pytest's status.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
MQTT_SIDE = ("cascade.connectors.mqtt", "aiomqtt", "paho", "cryptography")
PLANS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "protocol": (
        "packages/cascade-connector-protocol/tests",
        (*MQTT_SIDE, "cascade.connectors.testing"),
        ("-p", "no:cascade_connectors"),
    ),
    "testing": ("packages/cascade-connector-testing/tests", MQTT_SIDE, ()),
}


class Blocker(importlib.abc.MetaPathFinder):
    """Makes the named modules (and their submodules) unimportable."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if any(fullname == name or fullname.startswith(f"{name}.") for name in self.names):
            raise ModuleNotFoundError(f"{fullname} is blocked: this package's tests must not need it")
        return None


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in PLANS:
        print(f"usage: run_tests_alone.py {{{'|'.join(PLANS)}}} [pytest args...]", file=sys.stderr)
        return 2
    tests, blocked, options = PLANS[argv[0]]
    loaded = [name for name in blocked if name in sys.modules]
    if loaded:
        print(f"already imported before blocking: {loaded}", file=sys.stderr)
        return 2
    sys.meta_path.insert(0, Blocker(blocked))
    return int(pytest.main([str(ROOT / tests), "-p", "no:cacheprovider", *options, *argv[1:]]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
