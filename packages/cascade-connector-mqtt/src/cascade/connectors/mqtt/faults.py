"""Old import path of `FaultProxy`; it lives in `cascade.connectors.mqtt.testing`."""

from .testing._faults import FaultProxy

__all__ = ["FaultProxy"]
