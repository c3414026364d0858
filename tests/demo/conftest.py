"""Load ``docs/examples/demo.py`` (a script, not a package) as a module for the demo tests.

The script imports its engine model (``demo_engine.py``) from its own folder, as Python does when it
runs the script: the folder goes on ``sys.path`` here too.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DEMO_PATH = Path(__file__).resolve().parents[2] / "docs" / "examples" / "demo.py"
ENGINE_PATH = DEMO_PATH.with_name("demo_engine.py")


def load_demo() -> Any:
    """The demo script as a module (typed Any: it is not on mypy's path)."""
    name = "cascade_demo_example"
    module = sys.modules.get(name)
    if str(DEMO_PATH.parent) not in sys.path:
        sys.path.insert(0, str(DEMO_PATH.parent))
    if module is None:
        spec = importlib.util.spec_from_file_location(name, DEMO_PATH)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    assert isinstance(module, ModuleType)
    return module


@pytest.fixture(scope="session")
def demo() -> Any:
    return load_demo()
