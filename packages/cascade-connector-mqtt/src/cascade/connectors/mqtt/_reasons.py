"""Readable names for MQTT 5 reason codes, for every packet type that carries them."""

from __future__ import annotations

__all__ = ["disconnect_text", "reason_text"]

from typing import Final

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

# Where to look a code up when the caller does not say which packet it came in: the same number can
# name different things (0x00 is "Success", "Normal disconnection" or "Granted QoS 0").
_SEARCH_ORDER: Final = (
    PacketTypes.SUBACK,
    PacketTypes.PUBACK,
    PacketTypes.CONNACK,
    PacketTypes.DISCONNECT,
    PacketTypes.UNSUBACK,
    PacketTypes.PUBREC,
    PacketTypes.AUTH,
)


def _name(code: int, packet_type: int) -> str | None:
    try:
        name = ReasonCode(packet_type, identifier=code).getName()
    except Exception:  # not a code this packet type defines
        return None
    return str(name)


def reason_text(code: int, packet_type: int | None = None) -> str:
    """A readable name for an MQTT 5 reason code (``"Not authorized (0x87)"``).

    `packet_type` (a ``paho.mqtt.packettypes.PacketTypes`` value) picks the meaning when the code came
    in a known packet (``PacketTypes.DISCONNECT``); otherwise the first packet type defining the code
    names it. Unknown codes are shown as numbers.
    """
    order = _SEARCH_ORDER if packet_type is None else (packet_type, *_SEARCH_ORDER)
    for kind in order:
        name = _name(code, kind)
        if name is not None:
            return f"{name} (0x{code:02X})"
    return f"reason code 0x{code:02X}"


def disconnect_text(
    reason: ReasonCode, reason_string: str | None, from_server: bool, closing: bool, keepalive: int
) -> str:
    """Why a connection ended, from paho's on_disconnect: the broker's DISCONNECT reason by name (and
    its reason string), a keepalive timeout, our own close, or paho's generic loss.
    """
    if from_server:
        text = f"the broker sent DISCONNECT: {reason_text(reason.value, PacketTypes.DISCONNECT)}"
        return f"{text} ({reason_string})" if reason_string else text
    name = reason.getName()
    if name == "Keep alive timeout":
        return f"keepalive timeout (no PINGRESP within {keepalive} s)"
    if closing:
        return "closed by us"
    return f"connection lost ({name})"
