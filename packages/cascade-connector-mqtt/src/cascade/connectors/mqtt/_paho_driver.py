"""One connection driven through paho-mqtt's PUBLIC external-event-loop API only (the fallback).

Used when `_hooks` finds a private hook missing, or when ``CASCADE_MQTT_PUBLIC_API_ONLY=1``: paho's
``connect`` (in an executor thread: it blocks on TCP and TLS), ``socket``, ``loop_read``/``loop_write``
/``loop_misc``, ``want_write``, the ``on_socket_*`` callbacks and the ``on_*`` MQTT callbacks, as
paho documents for an external event loop. Same events to the `Link` as `_hooks.AiomqttDriver`.
The client acknowledges manually (``manual_ack=True``): the `Link` sends each PUBACK through paho's
``ack`` once the message's callbacks ran (`_drivers.send_puback`). All paho calls run on the loop
thread (the executor thread only runs ``connect``, before any message can arrive).
"""

from __future__ import annotations

__all__ = ["PahoDriver"]

import asyncio
import contextlib
import logging
import socket
import ssl
from typing import Any

import paho.mqtt.client as paho
from aiomqtt import MqttError
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ._callbacks import LinkEvents, PahoCallbacks
from ._hooks import ClosedBeforeConnack, ConnackTimeout

_MISC_INTERVAL = 1.0  # s between paho.loop_misc() calls (paho's keepalive check), as aiomqtt does


class PahoDriver(PahoCallbacks):
    """A paho client wired into the running asyncio loop through paho's public API."""

    def __init__(
        self,
        events: LinkEvents,
        *,
        hostname: str,
        port: int,
        identifier: str,
        username: str | None,
        password: str | None,
        will: tuple[str, bytes, Properties | None],
        keepalive: int,
        timeout: float,
        tls_context: ssl.SSLContext | None,
        tls_insecure: bool | None,
        logger: logging.Logger,
        properties: Properties | None,
        v5: bool = True,
    ) -> None:
        self._events = events
        self._v5 = v5
        self._hostname = hostname
        self._port = port
        self._keepalive = keepalive
        self._timeout = timeout
        self._properties = properties
        self._loop = asyncio.get_running_loop()
        self._connected: asyncio.Future[None] = self._loop.create_future()
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._misc: asyncio.Task[None] | None = None
        self._fd = -1
        version = paho.MQTTv5 if v5 else paho.MQTTv311
        # manual_ack: paho leaves every QoS 1/2 acknowledgement to us (`ack`), so a QoS 1 PUBACK goes
        # out only after the message's callbacks ran, as on the default driver (docs/contract.md, 13).
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=identifier, protocol=version, manual_ack=True
        )
        self.paho = client
        client.enable_logger(logger)
        if username is not None:
            client.username_pw_set(username, password)
        if tls_context is not None:
            client.tls_set_context(tls_context)
            if tls_insecure:
                client.tls_insecure_set(True)
        client.will_set(will[0], will[1], qos=1, retain=True, properties=will[2])
        client.max_inflight_messages_set(0)
        client.connect_timeout = timeout
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish

    async def open(self) -> None:
        """Connect and wait for the CONNACK. Raises aiomqtt's error types (`ConnackTimeout` included)."""
        try:
            await self._loop.run_in_executor(None, self._connect)
        except OSError as exc:
            raise MqttError(str(exc)) from exc
        client = self.paho
        sock = client.socket()
        if sock is None:
            raise ClosedBeforeConnack("paho has no socket after connecting")
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._fd = sock.fileno()
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self._loop.add_reader(self._fd, self._read)
        if client.want_write():
            self._loop.add_writer(self._fd, self._write)
        self._misc = self._loop.create_task(self._misc_loop())
        try:
            async with asyncio.timeout(self._timeout):
                await asyncio.shield(self._connected)
        except TimeoutError as exc:
            raise ConnackTimeout("no CONNACK in time") from exc

    def _connect(self) -> None:
        if not self._v5:  # MQTT 3.1.1: a clean session (paho's default), no properties
            self.paho.connect(self._hostname, self._port, self._keepalive)
            return
        self.paho.connect(
            self._hostname, self._port, self._keepalive, clean_start=True, properties=self._properties
        )

    async def close(self) -> None:
        """Send DISCONNECT and wait until paho reports it written."""
        if self._lost.done():
            return
        if self.paho.disconnect() == MQTTErrorCode.MQTT_ERR_SUCCESS:
            await asyncio.shield(self._lost)

    def lost_future(self) -> asyncio.Future[None]:
        """Done when the connection ends."""
        return self._lost

    def cut_callbacks(self) -> None:
        """Stop paho calling into the loop (it may still be connecting in an executor thread)."""
        client = self.paho
        client.on_socket_close = None
        client.on_socket_register_write = None
        client.on_socket_unregister_write = None

    def stop_tasks(self) -> None:
        """Stop watching the socket and calling paho (the connection is over)."""
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
            self._fd = -1
        misc = self._misc
        if misc is not None and not misc.done():
            misc.cancel()

    # ------------------------------------------------------------------ socket events

    def _read(self) -> None:
        client = self.paho
        try:
            while True:
                client.loop_read()
                sock = client.socket()
                if isinstance(sock, ssl.SSLSocket) and sock.pending() > 0:
                    continue
                break
        except Exception as exc:  # a broken socket: the connection is gone
            self._set_lost(exc)

    def _write(self) -> None:
        try:
            self.paho.loop_write()
        except Exception as exc:
            self._set_lost(exc)

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._loop.call_soon_threadsafe(self._register_write, sock)

    def _register_write(self, sock: Any) -> None:
        # Deferred (paho may call from another thread): the socket may have closed meanwhile.
        if self._fd >= 0 and self.paho.socket() is sock:
            self._loop.add_writer(self._fd, self._write)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._fd >= 0:
            self._loop.remove_writer(self._fd)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self.stop_tasks()

    async def _misc_loop(self) -> None:
        while self.paho.loop_misc() == MQTTErrorCode.MQTT_ERR_SUCCESS:  # noqa: ASYNC110 (a timer, not a wait)
            await asyncio.sleep(_MISC_INTERVAL)

    def _set_lost(self, exc: BaseException | None = None) -> None:
        if self._lost.done():
            return
        if exc is None:
            self._lost.set_result(None)
        else:
            self._lost.set_exception(exc)

    # ------------------------------------------------------------------ MQTT events

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        self._events._on_connack(properties)
        if self._connected.done():
            return
        if reason_code.is_failure:
            self._connected.set_exception(MqttConnectError(reason_code))
        else:
            self._connected.set_result(None)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        if not self._connected.done():
            self._connected.set_exception(ClosedBeforeConnack(f"closed before CONNACK ({reason_code})"))
            self._set_lost()
            return
        self._events._on_disconnect(reason_code, properties, bool(flags.is_disconnect_packet_from_server))
        self._set_lost()
