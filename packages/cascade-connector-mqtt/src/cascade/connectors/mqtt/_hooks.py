"""Every private aiomqtt/paho-mqtt access of the package, each behind an import-time check.

`HOOKS` maps each private name this module touches to a check that it is still there and shaped as
expected (attribute assigned in the library's source, method with the expected parameters, exception
text). `missing_hooks()` lists those whose check failed. When any is missing, or when the environment
variable ``CASCADE_MQTT_PUBLIC_API_ONLY=1`` (or the module switch `PUBLIC_API_ONLY`) says so, `Link`
runs on paho's public external-event-loop API instead (`_paho_driver`): slower, never losing a message.
`private_api_enabled()` decides, per connection, and logs once which hooks are missing.

Tested with aiomqtt 2.5.0 and 2.5.1, paho-mqtt 2.1.0 and 2.2.0 (the oldest and newest the pins allow).
"""

from __future__ import annotations

__all__ = [
    "HOOKS",
    "PUBLIC_API_ONLY",
    "AiomqttDriver",
    "ConnackTimeout",
    "ClosedBeforeConnack",
    "between_packets",
    "detach_socket",
    "in_packet",
    "install_puback_handler",
    "install_publish_handler",
    "next_packet_id",
    "note_received",
    "paho_handle_pubackcomp",
    "missing_hooks",
    "paho_handle_publish",
    "private_api_enabled",
    "queue_qos1",
    "queue_raw",
    "send_pingreq",
    "send_puback",
    "join_qos1_packets",
    "send_pubacks",
    "wrap_socket",
]

import asyncio
import functools
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, Final

import aiomqtt
import aiomqtt.client as _aiomqtt_client
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ._callbacks import LinkEvents, PahoCallbacks

_log = logging.getLogger("cascade.connectors.mqtt")

PUBLIC_API_ONLY: bool = os.environ.get("CASCADE_MQTT_PUBLIC_API_ONLY", "").strip().lower() in {
    "1",
    "true",
    "yes",
}
"""Force paho's public API for every new connection (tests set it; so may a user who distrusts a
newer aiomqtt/paho). Read when each connection opens."""


class ConnackTimeout(aiomqtt.MqttError):
    """No CONNACK within the connect timeout."""


class ClosedBeforeConnack(aiomqtt.MqttError):
    """The broker closed the TCP connection before answering CONNECT."""


# ---------------------------------------------------------------------------------- the checks


@functools.cache
def _source(obj: object) -> str:
    try:
        return inspect.getsource(obj)  # type: ignore[arg-type]
    except (OSError, TypeError):  # no source shipped: cannot verify, so treat as missing
        return ""


def _assigns(obj: object, attribute: str) -> Callable[[], bool]:
    return lambda: f"self.{attribute} =" in _source(obj) or f"self.{attribute}:" in _source(obj)


def _method(cls: type, name: str, *params: str) -> Callable[[], bool]:
    def check() -> bool:
        method = getattr(cls, name, None)
        if not callable(method):
            return False
        try:
            names = list(inspect.signature(method).parameters)
        except (TypeError, ValueError):
            return False
        return names[1 : 1 + len(params)] == list(params)

    return check


def _wires(callback: str) -> Callable[[], bool]:
    return lambda: (
        _method(aiomqtt.Client, f"_on_{callback}")()
        and f"self._client.on_{callback} = self._on_{callback}" in _source(aiomqtt.Client)
    )


def _message_info() -> bool:
    try:
        info = paho.MQTTMessageInfo(0)
    except Exception:
        return False
    return callable(getattr(info, "is_published", None)) and callable(
        getattr(info, "_set_as_published", None)
    )


def _in_packet_shape() -> bool:
    src = _source(paho.Client)
    return (
        "self._in_packet = {" in src
        and '"packet"' in src.replace("'", '"')
        and "_in_packet['command']" in src
    )


def _out_packet_shape() -> bool:
    # paho writes `_out_packet` one dict at a time and acts after a write only on QoS 0 PUBLISH and
    # DISCONNECT packets: a QoS 1 PUBLISH is tracked by its PUBACK (join_qos1_packets relies on it).
    src = _source(paho.Client._packet_write).replace("'", '"')
    return (
        "self._out_packet.popleft()" in src
        and 'packet["qos"] == 0' in src
        and '"to_process"' in src
        and '"pos"' in src
    )


def _received_attribute() -> str | None:
    # paho 2.2 keeps when bytes last arrived in `_last_bytes_received`, 2.1 when a packet last did in
    # `_last_msg_in`; its keepalive check closes the connection when that is too long ago.
    src = _source(paho.Client)
    for name in ("_last_bytes_received", "_last_msg_in"):
        if f"self.{name} = time_func()" in src:
            return name
    return None


HOOKS: Final[dict[str, Callable[[], bool]]] = {
    "aiomqtt Client._client (the paho client)": _assigns(aiomqtt.Client, "_client"),
    "aiomqtt Client._connected": _assigns(aiomqtt.Client, "_connected"),
    "aiomqtt Client._disconnected": _assigns(aiomqtt.Client, "_disconnected"),
    "aiomqtt Client._misc_task": _assigns(aiomqtt.Client, "_misc_task"),
    "aiomqtt Client._on_connect": _wires("connect"),
    "aiomqtt Client._on_disconnect": _wires("disconnect"),
    "aiomqtt Client._on_subscribe": _wires("subscribe"),
    "aiomqtt Client._on_unsubscribe": _wires("unsubscribe"),
    "aiomqtt Client._on_message": _wires("message"),
    "aiomqtt Client._on_publish": _wires("publish"),
    "aiomqtt Client._on_socket_register_write": _wires("socket_register_write"),
    "aiomqtt CONNACK timeout text 'Operation timed out'": lambda: (
        "Operation timed out" in _source(_aiomqtt_client)
    ),
    "paho Client._sock (read through .recv)": lambda: (
        "return self._sock.recv(bufsize)" in _source(paho.Client)
    ),
    "paho Client._in_packet": _in_packet_shape,
    "paho Client._out_packet (QoS 1 PUBLISH: nothing done once written)": _out_packet_shape,
    "paho Client._handle_publish": _method(paho.Client, "_handle_publish"),
    "paho Client._packet_queue": _method(
        paho.Client, "_packet_queue", "command", "packet", "mid", "qos", "info"
    ),
    "paho Client._send_puback": _method(paho.Client, "_send_puback", "mid"),
    "paho Client._handle_pubackcomp": _method(paho.Client, "_handle_pubackcomp", "cmd"),
    "paho Client._mid_generate": _method(paho.Client, "_mid_generate"),
    "paho Client._send_pingreq": _method(paho.Client, "_send_pingreq"),
    "paho Client._last_bytes_received or _last_msg_in": lambda: _received_attribute() is not None,
    "paho MQTTMessageInfo(0) construction": _message_info,
}


def _run_checks() -> tuple[str, ...]:
    missing = []
    for name, check in HOOKS.items():
        try:
            ok = check()
        except Exception:
            ok = False
        if not ok:
            missing.append(name)
    return tuple(missing)


_MISSING: Final = _run_checks()
_logged = False


def missing_hooks() -> tuple[str, ...]:
    """The hooks whose import-time check failed with the installed aiomqtt/paho (empty when all fine)."""
    return _MISSING


def private_api_enabled() -> bool:
    """Whether a new connection may use the private hooks (the fast path). Logs once when not."""
    global _logged
    if _MISSING:
        if not _logged:
            _logged = True
            _log.warning(
                "aiomqtt %s / paho-mqtt %s lack private hooks this connector uses (%s): using paho's "
                "public API instead (slower, nothing lost)",
                getattr(aiomqtt, "__version__", "?"),
                _paho_version(),
                "; ".join(_MISSING),
            )
        return False
    if PUBLIC_API_ONLY:
        if not _logged:
            _logged = True
            _log.info("CASCADE_MQTT_PUBLIC_API_ONLY: using paho's public API only (slower, nothing lost)")
        return False
    return True


def _paho_version() -> str:
    import paho.mqtt

    return str(getattr(paho.mqtt, "__version__", "?"))


# ---------------------------------------------------------------------------------- the private driver


class AiomqttDriver(PahoCallbacks, aiomqtt.Client):
    """aiomqtt's client with paho's callbacks routed to a `Link` instead of aiomqtt's own queues."""

    def __init__(self, events: LinkEvents, **kwargs: Any) -> None:
        self._events = events
        self._events_loop = asyncio.get_running_loop()
        super().__init__(**kwargs)
        self.paho: paho.Client = self._client

    async def open(self) -> None:
        """Connect and wait for the CONNACK. Raises aiomqtt errors (`ConnackTimeout` included)."""
        try:
            await self.__aenter__()
        except aiomqtt.MqttError as exc:
            if str(exc) == "Operation timed out" and not isinstance(exc, aiomqtt.MqttCodeError):
                raise ConnackTimeout(str(exc)) from exc
            raise

    async def close(self) -> None:
        """Send DISCONNECT and wait until paho reports it written."""
        await self.__aexit__(None, None, None)

    def lost_future(self) -> asyncio.Future[None]:
        """Done when the connection ends (its exception, if any, is the cause)."""
        return self._disconnected

    def cut_callbacks(self) -> None:
        """Stop paho calling into the loop (it may still be connecting in an executor thread)."""
        for name in (
            "on_socket_open",
            "on_socket_close",
            "on_socket_register_write",
            "on_socket_unregister_write",
        ):
            setattr(self.paho, name, None)

    def stop_tasks(self) -> None:
        misc = self._misc_task
        if misc is not None and not misc.done():
            misc.cancel()

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        self._events._on_connack(properties)
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        if not self._connected.done():
            # aiomqtt would ignore this and wait for a CONNACK that can no longer come.
            self._connected.set_exception(ClosedBeforeConnack(f"closed before CONNACK ({reason_code})"))
            return
        self._events._on_disconnect(reason_code, properties, bool(flags.is_disconnect_packet_from_server))
        super()._on_disconnect(client, userdata, flags, reason_code, properties)

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # aiomqtt defers add_writer with call_soon_threadsafe (paho may call from its connect thread)
        # and does not check, when it runs, that the socket is still open: a loss in between made
        # asyncio log "Exception in callback ... Bad file descriptor" at ERROR.
        def write() -> None:
            try:
                join_qos1_packets(client)
                client.loop_write()
            except Exception as exc:  # the connection broke, as in aiomqtt's own callback
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def register() -> None:
            live = client.socket()
            if live is not None and live is sock and live.fileno() >= 0:
                loop.add_writer(live.fileno(), write)

        loop = self._events_loop
        loop.call_soon_threadsafe(register)


# ---------------------------------------------------------------------------------- paho internals


def install_publish_handler(client: paho.Client, handler: Callable[[], MQTTErrorCode]) -> None:
    """Make paho hand every inbound PUBLISH to `handler` (paho looks it up on the instance)."""
    client._handle_publish = handler  # type: ignore[method-assign]


def install_puback_handler(client: paho.Client, handler: Callable[[str], MQTTErrorCode]) -> None:
    """Make paho hand every PUBACK and PUBCOMP it reads to `handler` (called with "PUBACK"/"PUBCOMP")."""
    client._handle_pubackcomp = handler  # type: ignore[assignment]


def paho_handle_pubackcomp(client: paho.Client, cmd: str) -> MQTTErrorCode:
    """Paho's own PUBACK/PUBCOMP handler (for the messages paho itself published)."""
    return paho.Client._handle_pubackcomp(client, cmd)  # type: ignore[arg-type]


def next_packet_id(client: paho.Client) -> int:
    """A packet identifier from paho's own sequence (so that ours never collide with its SUBSCRIBE)."""
    return client._mid_generate()


def queue_qos1(client: paho.Client, packet: bytes) -> None:
    """Queue a ready-made QoS 1 PUBLISH packet; paho writes it in order with its own packets and does
    nothing once it is written (the PUBACK is ours to handle); `join_qos1_packets` may join it.
    """
    client._packet_queue(paho.PUBLISH, packet, 0, 1)


def paho_handle_publish(client: paho.Client) -> MQTTErrorCode:
    """Paho's own PUBLISH handler (decodes into an ``MQTTMessage``, calls on_message, acknowledges)."""
    return paho.Client._handle_publish(client)


def in_packet(client: paho.Client) -> tuple[int, bytes | bytearray]:
    """The packet paho has just read: (first header byte, variable header and payload)."""
    packet = client._in_packet
    return packet["command"], packet["packet"]


def between_packets(client: paho.Client) -> bool:
    """Whether paho is not in the middle of reading a packet (the next byte starts a new one)."""
    return not client._in_packet["command"]


_RECEIVED: Final = _received_attribute()


def note_received(client: paho.Client) -> None:
    """Tell paho that packets arrived which it did not read itself (its keepalive check counts them)."""
    if _RECEIVED is not None:
        with client._msgtime_mutex:
            setattr(client, _RECEIVED, paho.time_func())


def send_puback(client: paho.Client, mid: int) -> MQTTErrorCode:
    return client._send_puback(mid)


def join_qos1_packets(client: paho.Client) -> None:
    """Join each run of queued QoS 1 PUBLISH packets not yet begun into ONE paho packet, so that paho
    writes them with one ``send`` instead of one each. paho does nothing per written QoS 1 packet (it
    tracks each by its PUBACK), so the bytes on the wire and paho's bookkeeping stay the same.
    """
    out = client._out_packet
    if len(out) < 2:
        return
    joined: list[Any] = []
    run: list[Any] = []
    for packet in out:
        if packet["qos"] == 1 and packet["pos"] == 0 and packet["command"] & 0xF0 == paho.PUBLISH:
            run.append(packet)
            continue
        if run:
            joined.append(_joined(run))
            run = []
        joined.append(packet)
    if run:
        joined.append(_joined(run))
    if len(joined) < len(out):
        out.clear()
        out.extend(joined)


def _joined(run: list[Any]) -> Any:
    if len(run) == 1:
        return run[0]
    data = b"".join(packet["packet"] for packet in run)
    first = dict(run[0])
    first["packet"] = data
    first["to_process"] = len(data)
    return first


def send_pubacks(client: paho.Client, mids: Sequence[int]) -> MQTTErrorCode:
    """Queue the PUBACKs of inbound QoS 1 messages `mids` as ONE paho packet (one socket write)."""
    data = b"".join(_PUBACK_HEAD + mid.to_bytes(2, "big") for mid in mids)
    return client._packet_queue(paho.PUBACK, data, 0, 0)


_PUBACK_HEAD: Final = bytes((paho.PUBACK, 2))  # PUBACK, remaining length 2 (MQTT 5: reason 0 implied)


def send_pingreq(client: paho.Client) -> None:
    """Queue a PINGREQ (paho then expects the PINGRESP within keepalive, and closes otherwise)."""
    client._send_pingreq()


def queue_raw(client: paho.Client, data: bytes) -> paho.MQTTMessageInfo:
    """Queue ready-made PUBLISH packets as one paho packet (one socket write). paho reports its write
    through on_publish with message id 0, which it never assigns itself.
    """
    info = paho.MQTTMessageInfo(0)
    client._packet_queue(paho.PUBLISH, data, 0, 0, info)
    return info


def wrap_socket(client: paho.Client, wrap: Callable[[Any], Any], is_wrapped: Callable[[Any], bool]) -> None:
    """Replace paho's socket by `wrap(socket)` (paho reads it only through ``recv``)."""
    sock = client._sock
    if sock is not None and not is_wrapped(sock):
        client._sock = wrap(sock)


def detach_socket(client: paho.Client) -> Any:
    """Take the socket away from paho (so its __del__ does not close it again after the loop is
    closed) and return it (None when there is none).
    """
    sock = client.socket()
    client._sock = None
    return sock
