"""The Cascade MQTT connector: `MqttConnector`, over MQTT 5 with aiomqtt, and its `MqttSettings`.

See docs/mqtt.md. `MosquittoServer` (module `cascade.connectors.mqtt.mosquitto`) runs a private
Mosquitto for tests and demos; `FaultProxy` (module `cascade.connectors.mqtt.faults`) cuts or stalls
connections on purpose. `cascade.connectors.mqtt.operator` is the operator API behind
``cascade-mqtt`` (pause, limit, resume, list, watch), for any `Connector`.
"""

from ._connector import MqttConnector
from ._settings import MqttSettings
from ._subscriptions import MqttSubscription
from ._url import InvalidUrlError

__all__ = ["MqttConnector", "MqttSettings", "MqttSubscription", "InvalidUrlError"]
