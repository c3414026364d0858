"""The three distributions share the `cascade.connectors` namespace cleanly.

`cascade` and `cascade.connectors` are implicit namespace packages (no ``__init__.py``, no ``py.typed``
in any distribution); each distribution owns only its leaf folder, which ships ``py.typed``.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "protocol": ROOT / "packages" / "cascade-connector-protocol",
    "testing": ROOT / "packages" / "cascade-connector-testing",
    "mqtt": ROOT / "packages" / "cascade-connector-mqtt",
}


@pytest.mark.parametrize("leaf", sorted(PACKAGES))
def test_no_init_in_shared_levels(leaf: str) -> None:
    src = PACKAGES[leaf] / "src"
    assert (src / "cascade").is_dir()
    assert not (src / "cascade" / "__init__.py").exists()
    assert not (src / "cascade" / "connectors" / "__init__.py").exists()
    # Nothing but the leaf folder is owned: no stray modules in the shared levels.
    shared = [p.name for p in (src / "cascade").iterdir() if p.name != "__pycache__"]
    assert shared == ["connectors"]
    leaves = [p.name for p in (src / "cascade" / "connectors").iterdir() if p.name != "__pycache__"]
    assert leaves == [leaf]


@pytest.mark.parametrize("leaf", sorted(PACKAGES))
def test_py_typed_ships_in_the_leaf_folder_only(leaf: str) -> None:
    src = PACKAGES[leaf] / "src"
    assert (src / "cascade" / "connectors" / leaf / "py.typed").is_file()
    assert (src / "cascade" / "connectors" / leaf / "__init__.py").is_file()
    assert not (src / "cascade" / "py.typed").exists()
    assert not (src / "cascade" / "connectors" / "py.typed").exists()


def test_namespace_merges_the_three_src_folders() -> None:
    # A clean interpreter (no site-packages) with the three src folders on sys.path: the namespace
    # levels must span all three, whatever is installed in the environment running the tests.
    srcs = [str(PACKAGES[leaf] / "src") for leaf in sorted(PACKAGES)]
    code = (
        "import json, sys\n"
        f"sys.path[:0] = {srcs!r}\n"
        "import cascade, cascade.connectors\n"
        "print(json.dumps({'cascade_file': getattr(cascade, '__file__', None),\n"
        "                  'connectors_file': getattr(cascade.connectors, '__file__', None),\n"
        "                  'paths': list(cascade.connectors.__path__)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["cascade_file"] is None
    assert report["connectors_file"] is None
    expected = {str(PACKAGES[leaf] / "src" / "cascade" / "connectors") for leaf in PACKAGES}
    assert {str(Path(p).resolve()) for p in report["paths"]} == expected


@pytest.mark.parametrize("leaf", sorted(PACKAGES))
def test_every_name_in_all_exists(leaf: str) -> None:
    module = importlib.import_module(f"cascade.connectors.{leaf}")
    names = list(module.__all__)
    assert len(names) == len(set(names)), f"duplicate names in cascade.connectors.{leaf}.__all__"
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == [], f"cascade.connectors.{leaf}.__all__ names missing attributes: {missing}"
