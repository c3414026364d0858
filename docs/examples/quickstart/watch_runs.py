"""Watch telemetry: print every task state change, until one run's engine stops."""

import asyncio
import os
from typing import Any

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.protocol import (
    TELEMETRY_FILTER,
    LifecycleEvent,
    LifecycleEventType,
    SchemaError,
    TaskStateEvent,
    decode_telemetry,
)


async def main() -> None:
    url = os.environ.get("CASCADE_MQTT_URL", "mqtt://localhost:1883")
    stopped = asyncio.Event()

    async def on_telemetry(topic: str, payload: dict[str, Any]) -> None:
        try:
            message = decode_telemetry(topic, payload)  # the header must name the topic's run
        except SchemaError as exc:
            print(f"skipped a bad message on {topic}: {exc}")
            return
        header, body = message.header, message.body
        if isinstance(body, TaskStateEvent):
            print(f"{header.project_id}/{header.run_id} {body.task_name}: {body.state}", flush=True)
        elif body == LifecycleEvent(LifecycleEventType.ENGINE_STOPPED):
            stopped.set()

    async with MqttConnector.from_url(url) as watcher:
        await watcher.subscribe(TELEMETRY_FILTER, on_telemetry)
        print("watching", flush=True)
        await stopped.wait()


if __name__ == "__main__":
    asyncio.run(main())
