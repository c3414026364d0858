"""`RabbitMQCluster`: RabbitMQ nodes clustered on this one machine, each with its own MQTT port.

Every node shares one private epmd and cookie (`ErlangRuntime`); node B joins node A with ``rabbitmqctl
join_cluster`` after its first start. `urls` lists every node's MQTT address (the multi-address form the
connector will take: ``mqtt://h1:p1,h2:p2``).
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from ._base import BrokerStartError
from ._erlang import ErlangRuntime
from .rabbitmq import RabbitMQServer

__all__ = ["RabbitMQCluster"]


class RabbitMQCluster:
    """`size` RabbitMQ nodes (default 2) in one cluster; `nodes[0]` is the one the others join."""

    def __init__(self, size: int = 2) -> None:
        if size < 2:
            raise ValueError(f"a cluster has at least 2 nodes, not {size}")
        self._directory = Path(tempfile.mkdtemp(prefix="cascade-rabbitmq-cluster-"))
        self.runtime = ErlangRuntime(self._directory)
        tag = secrets.token_hex(3)
        self.nodes = [
            RabbitMQServer(runtime=self.runtime, node=f"cascade-{tag}-{chr(ord('a') + i)}@localhost")
            for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        """Every node's ``mqtt://127.0.0.1:PORT``, node A first."""
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """All nodes in one URL: ``mqtt://127.0.0.1:PA,127.0.0.1:PB``."""
        return "mqtt://" + ",".join(f"{node.host}:{node.port}" for node in self.nodes)

    def start(self, timeout: float = 120.0) -> None:
        """Start every node and join the others to node A; returns once each node serves MQTT."""
        first, *others = self.nodes
        first.start(timeout)
        for node in others:
            node.start(timeout)
            try:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.node)
                node.ctl("start_app")
            except BrokerStartError as exc:
                states = "; ".join(f"{n.node}: {n!r}, log: {n.log_tail(8)}" for n in self.nodes)
                raise BrokerStartError(f"{exc} | nodes: {states}") from exc
            node.wait_ready(timeout)

    def running_nodes(self, via: RabbitMQServer | None = None) -> list[str]:
        """The node names the cluster reports as running (asked through `via`, default a live node)."""
        asker = via or next(node for node in self.nodes if node.running)
        status = json.loads(asker.ctl("cluster_status", "--formatter", "json"))
        return sorted(str(name) for name in status["running_nodes"])

    def close(self) -> None:
        """Stop every node (B before A), stop epmd, delete the directories."""
        try:
            for node in reversed(self.nodes):
                node.close()
        finally:
            self.runtime.stop_epmd()
            shutil.rmtree(self._directory, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
