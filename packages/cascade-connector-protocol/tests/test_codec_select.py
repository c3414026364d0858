"""Choosing the codec: ``CASCADE_CODEC`` at import, `codec_name`, and the ``[fast]`` extra."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from cascade.connectors.protocol import _codec_fast, _codec_stdlib, codec, codec_name

SRC = Path(__file__).resolve().parents[1] / "src"

PROBE = """
from cascade.connectors.protocol import codec_name, decode_payload, encode_payload
print(codec_name(), encode_payload.__module__)
"""


def _probe(value: str | None, *, isolated: bool = False) -> subprocess.CompletedProcess[str]:
    """Import the package in a fresh interpreter with CASCADE_CODEC=`value` (unset for None).

    `isolated`: only the standard library and the protocol's src folder (msgspec not importable).
    """
    env = {name: v for name, v in os.environ.items() if name != "CASCADE_CODEC"}
    if value is not None:
        env["CASCADE_CODEC"] = value
    command = [sys.executable, "-c", PROBE]
    if isolated:
        command = [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {str(SRC)!r})\n{PROBE}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("stdlib", "stdlib cascade.connectors.protocol._codec_stdlib"),
        ("fast", "fast cascade.connectors.protocol._codec_fast"),
        (" Fast ", "fast cascade.connectors.protocol._codec_fast"),
        ("auto", "fast cascade.connectors.protocol._codec_fast"),
        ("", "fast cascade.connectors.protocol._codec_fast"),
        (None, "fast cascade.connectors.protocol._codec_fast"),
    ],
)
def test_the_environment_variable_selects_the_codec(value: str | None, expected: str) -> None:
    result = _probe(value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_an_unknown_codec_name_fails_the_import_and_says_what_to_use() -> None:
    result = _probe("simdjson")
    assert result.returncode != 0
    assert "ImportError: CASCADE_CODEC='simdjson' is not a codec: use stdlib, fast or auto" in result.stderr


def test_without_msgspec_the_automatic_choice_is_the_standard_library() -> None:
    for value in (None, "auto", "stdlib"):
        result = _probe(value, isolated=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "stdlib cascade.connectors.protocol._codec_stdlib"


def test_asking_for_the_fast_codec_without_msgspec_fails_and_says_how_to_install_it() -> None:
    result = _probe("fast", isolated=True)
    assert result.returncode != 0
    assert "CASCADE_CODEC=fast needs msgspec: pip install 'cascade-connector-protocol[fast]'" in result.stderr
    assert "ModuleNotFoundError: No module named 'msgspec'" in result.stderr  # the cause is kept


def test_this_session_runs_the_codec_it_asked_for() -> None:
    """`hatch run test` asks for stdlib, `hatch run fast` for fast: each really runs that codec."""
    requested = os.environ.get("CASCADE_CODEC", "").strip().lower() or "auto"
    expected = "fast" if requested == "auto" else requested
    assert codec_name() == expected
    implementation = _codec_fast if expected == "fast" else _codec_stdlib
    assert codec.encode_payload is implementation.encode_payload
    assert codec.decode_payload is implementation.decode_payload


def test_the_fast_extra_installs_msgspec() -> None:
    pyproject = tomllib.loads((SRC.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["optional-dependencies"]["fast"] == ["msgspec>=0.19"]
    assert pyproject["project"]["dependencies"] == []
    # The fast codec's tests run on a msgspec the extra allows.
    major, minor = (int(part) for part in metadata.version("msgspec").split(".")[:2])
    assert (major, minor) >= (0, 19)
