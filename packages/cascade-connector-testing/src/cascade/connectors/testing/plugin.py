"""The pytest plugin of cascade-connector-testing (loaded automatically through the ``pytest11`` entry point).

Work in progress: fixtures come with the in-memory broker.
"""

from __future__ import annotations

from ._eventually import eventually

__all__ = ["eventually"]
