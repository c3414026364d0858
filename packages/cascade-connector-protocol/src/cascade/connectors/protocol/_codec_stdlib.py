"""The standard-library codec: the reference implementation of the payload rules (see `codec`).

The empty object and the empty (zero-byte) payload are the same thing: ``{}`` encodes to ``b""`` and
``b""`` decodes to ``{}``; retained, it clears a topic's state. The fast codec (`_codec_fast`) hands
every payload it cannot prove it handles identically to the functions here.
"""

from __future__ import annotations

__all__ = ["encode_payload", "decode_payload"]

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from .errors import PayloadError

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _not_serializable(value: object) -> NoReturn:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_encode() -> Callable[[Any], str]:
    # JSONEncoder.encode builds a fresh C encoder on every call; on the publish hot path we build it
    # once. markers=None drops the circular-reference check: a cycle ends in RecursionError instead,
    # which encode_payload reports as a PayloadError all the same.
    make = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or basestring is None:  # pragma: no cover - CPython always has both
        return _ENCODER.encode
    encoder = make(None, _not_serializable, basestring, None, ":", ",", False, False, False)

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode


_encode = _make_encode()


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # JSON has no infinities; a literal too large for a float (1e400) would decode to inf and could
    # never be encoded again, so it is refused like the NaN/Infinity tokens.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]!r} is out of range for a float")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_decode = _DECODER.decode
_scan_once: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _decode_fast(text: str) -> Any:
    # The scanner alone skips decode()'s two whitespace regex passes. Anything it does not consume
    # whole (leading or trailing whitespace, trailing garbage, errors) goes through the full decoder,
    # which gives the same result or the same JSONDecodeError.
    try:
        value, end = _scan_once(text, 0)
    except (StopIteration, ValueError):
        return _decode(text)
    if end != len(text):
        return _decode(text)
    return value


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Encode `payload` as compact UTF-8 JSON; ``{}`` becomes ``b""``.

    Raises `PayloadError` if `payload` is not a mapping or JSON cannot encode it (NaN and infinities
    included). Cheap: one C-accelerated encode, no copies for a plain dict.
    """
    if type(payload) is not dict:
        if not isinstance(payload, Mapping):
            raise PayloadError(f"must be a mapping (a JSON object), not {type(payload).__name__}")
        payload = dict(payload)
    if not payload:
        return b""
    try:
        return _encode(payload).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"not JSON-encodable: {exc}") from exc


def decode_payload(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode raw bytes into a fresh dict; ``b""`` decodes to ``{}``.

    Raises `PayloadError` for invalid UTF-8, invalid JSON (NaN/Infinity included, and numbers too large
    for a float such as ``1e400``) or JSON that is not an object.
    """
    if not data:
        return {}
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"not UTF-8: {exc}") from exc
    try:
        value = _decode_fast(text)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"not valid JSON: {exc}") from exc
    if type(value) is not dict:
        raise PayloadError(f"must be a JSON object, not {type(value).__name__}")
    return value
