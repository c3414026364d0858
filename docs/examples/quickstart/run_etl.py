"""Run the engine in production: over MQTT, the broker named by CASCADE_MQTT_URL."""

import asyncio
import os

from cascade.connectors.mqtt import MqttConnector
from my_engine import run_engine


async def extract(name: str) -> None:
    await asyncio.sleep(0.01)  # ... the real work of task `name` ...


async def main() -> None:
    url = os.environ.get("CASCADE_MQTT_URL", "mqtt://localhost:1883")
    connector = MqttConnector.from_url(url, source="etl-worker-1")
    states = await run_engine(connector, ["extract", "transform", "load"], extract,
                              project="etl", run_id="run-42", source=connector.source)
    print({task_id: state.value for task_id, state in states.items()})


if __name__ == "__main__":
    asyncio.run(main())
