"""The ``cascade-mqtt`` operator CLI (private; the console script calls `main`). See docs/operators.md."""

from .app import main

__all__ = ["main"]
