"""docs/testing.md and docs/contract.md are real.

Every ```python block in those pages follows a ``<!-- snippet: PATH#REGION -->`` marker and equals that
region of a file pytest runs (regions are delimited by ``# --8<-- [start:REGION]`` / ``[end:REGION]``).
docs/contract.md lists every contract test, and names no test that does not exist.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from cascade.connectors.testing import ConnectorContract

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["docs/testing.md", "docs/contract.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!-- snippet: (?P<path>[^#\s]+)#(?P<region>[\w-]+) -->\n$")


def region(path: Path, name: str) -> str:
    text = path.read_text(encoding="utf-8")
    start = f"# --8<-- [start:{name}]\n"
    end = f"# --8<-- [end:{name}]"
    assert start in text, f"{path}: no region {name!r}"
    body = text.split(start, 1)[1].split(end, 1)[0]
    return textwrap.dedent(body).strip("\n") + "\n"


def python_blocks(page: str) -> list[tuple[int, str, str]]:
    text = (ROOT / page).read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(1) == "python":
            line = text.count("\n", 0, match.start()) + 1
            before = text[: match.start()].splitlines(keepends=True)
            blocks.append((line, before[-1] if before else "", match.group(2)))
    return blocks


@pytest.mark.parametrize("page", PAGES)
def test_every_python_block_is_a_tested_snippet(page: str) -> None:
    for line, marker_line, block in python_blocks(page):
        marker = MARKER.search(marker_line)
        assert marker is not None, f"{page}:{line}: python block without a '<!-- snippet: ... -->' marker"
        expected = region(ROOT / marker["path"], marker["region"])
        assert block == expected, f"{page}:{line} differs from {marker['path']}#{marker['region']}"


def test_the_testing_page_quotes_every_example() -> None:
    page = (ROOT / PAGES[0]).read_text(encoding="utf-8")
    quoted = set(re.findall(r"<!-- snippet: tests/examples/test_docs_testing.py#([\w-]+) -->", page))
    source = (ROOT / "tests/examples/test_docs_testing.py").read_text(encoding="utf-8")
    regions = set(re.findall(r"# --8<-- \[start:([\w-]+)\]", source))
    assert regions == {"engine", "eventually", "outage", "drop", "inject"}
    assert quoted == regions


def test_contract_page_lists_every_contract_test() -> None:
    text = (ROOT / "docs/contract.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"`(test_\w+)`", text))
    tests = {name for name in dir(ConnectorContract) if name.startswith("test_")}
    assert tests - listed == set(), "contract tests missing from docs/contract.md"
    assert listed - tests == set(), "docs/contract.md names tests that do not exist"
