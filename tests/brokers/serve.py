"""Run one broker of the matrix by hand: ``python -m tests.brokers.serve NAME [--once]``.

NAME is mosquitto, rabbitmq, ejabberd, aedes, amqtt or rabbitmq-cluster. It starts the broker exactly as
the tests do (free loopback ports, a private tmp dir), prints its URL, and runs until Ctrl-C; ``--once``
stops it again right after it served one CONNECT (what the test of this command does).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.brokers.conftest import SERVERS
    from tests.brokers.servers._base import mqtt_connack
    from tests.brokers.servers.cluster import RabbitMQCluster

    names = [*SERVERS, "rabbitmq-cluster"]
    if not argv or argv[0] not in names:
        print(f"usage: python -m tests.brokers.serve {{{','.join(names)}}} [--once]", file=sys.stderr)
        return 2
    once = "--once" in argv[1:]
    target = RabbitMQCluster() if argv[0] == "rabbitmq-cluster" else SERVERS[argv[0]]()
    try:
        target.start()
        nodes = target.nodes if isinstance(target, RabbitMQCluster) else [target]
        for node in nodes:
            code = mqtt_connack(node.host, node.port, credentials=node.credentials)
            print(f"{node.name} serving MQTT at {node.url} (CONNACK {code})", flush=True)
        if not once:
            print("Ctrl-C stops it and deletes its directory", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        target.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
