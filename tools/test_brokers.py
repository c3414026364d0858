"""Run the broker matrix (docs/brokers.md): ``pytest tests/brokers --timeout 600 ARGS``.

Arguments go to pytest. When they name test files or folders under ``tests/brokers`` (as paths or
node ids), only those run; otherwise the whole matrix does. (``tests/brokers`` is kept out of the
main suite's collection, so naming a file there is the way to run one.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

MATRIX = Path("tests") / "brokers"


def names_a_test(arg: str) -> bool:
    """Whether a pytest argument is a path or node id under tests/brokers."""
    if arg.startswith("-"):
        return False
    path = Path(arg.split("::", 1)[0])
    return path == MATRIX or MATRIX in path.parents


def main(argv: list[str]) -> int:
    args = list(argv)
    if not any(names_a_test(arg) for arg in args):
        args.insert(0, str(MATRIX))
    return int(pytest.main(["--timeout", "600", *args]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
