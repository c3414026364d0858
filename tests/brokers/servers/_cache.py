"""Where ``tools/install_brokers.sh`` puts the brokers that do not come from the OS packages."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_DIR", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[3]
# ``.brokers/`` in the repository (git-ignored): node_modules for aedes, amqtt-venv for amqtt.
CACHE_DIR = Path(os.environ.get("CASCADE_BROKERS_DIR", REPO_ROOT / ".brokers"))
