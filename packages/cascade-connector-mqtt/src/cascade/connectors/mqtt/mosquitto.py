"""Old import path of `MosquittoServer` and its helpers; they live in `cascade.connectors.mqtt.testing`."""

from .testing._mosquitto import MosquittoNotFoundError, MosquittoServer, TlsFiles, find_mosquitto, free_port

__all__ = ["MosquittoServer", "MosquittoNotFoundError", "TlsFiles", "find_mosquitto", "free_port"]
