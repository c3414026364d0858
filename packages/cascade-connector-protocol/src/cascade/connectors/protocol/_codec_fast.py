"""The fast codec, built on msgspec: the same bytes, values and errors as the standard-library codec.

msgspec alone would not do: it encodes more than JSON's types (enums, UUIDs, dataclasses, datetimes,
Decimal, bytes, sets), writes NaN and infinities as ``null``, iterates an ``OrderedDict`` in storage
order and spells some floats differently (``1e16`` where ``repr`` gives ``1e+16``). So a payload goes
to msgspec only when a quick walk (`_plain_dict`) finds nothing but exact ``dict``/``list``/``tuple``
containers at most `_MAX_DEPTH` levels deep, exact ``str`` keys, and exact ``str``/``int``/``bool``/
``None``/``float`` values with every float zero or in ``1e-4 <= |x| < 1e16`` (the range where msgspec
and ``repr`` spell floats alike). Everything else, and everything msgspec refuses (lone surrogates,
integers too long for ``str``), is handed to the standard-library codec, which returns its result or
raises its error. Decoding (of ``bytes``; other buffers and types go to the stdlib codec, which
does not read a ``str`` as msgspec would): msgspec reads exactly what the stdlib decoder reads
(integers of any size stay integers, numbers too large for a float and NaN are refused); whatever
it refuses, and every result that is not an object, is decoded again by the standard-library codec,
so that the error (or, for the few inputs only the stdlib reads, such as escaped lone surrogates,
the value) is identical. Nesting near Python's recursion limit (about 1 000 levels) is refused by
both with `PayloadError`, at a level that depends on the caller's stack depth; the two codecs use a
frame more or less and can differ there by a level or two.
"""

from __future__ import annotations

__all__ = ["encode_payload", "decode_payload"]

from collections.abc import Mapping
from typing import Any

import msgspec

from . import _codec_stdlib

# Deeper payloads go through the stdlib codec (the walk below is recursive; so is the stdlib encoder).
_MAX_DEPTH = 32
_NoneType = type(None)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def _plain_seq(values: list[Any] | tuple[Any, ...], depth: int) -> bool:
    for value in values:
        kind = type(value)
        if kind is str or kind is int or kind is bool or kind is _NoneType:
            continue
        if kind is float:
            if 1e-4 <= abs(value) < 1e16 or value == 0.0:  # NaN fails both tests
                continue
            return False
        if kind is dict:
            if depth < _MAX_DEPTH and _plain_dict(value, depth + 1):
                continue
            return False
        if kind is list or kind is tuple:
            if depth < _MAX_DEPTH and _plain_seq(value, depth + 1):
                continue
            return False
        return False
    return True


def _plain_dict(payload: dict[Any, Any], depth: int) -> bool:
    """Whether msgspec encodes `payload` to exactly the stdlib codec's bytes (see the module doc)."""
    for key, value in payload.items():
        if type(key) is not str:
            return False
        kind = type(value)
        if kind is str or kind is int or kind is bool or kind is _NoneType:
            continue
        if kind is float:
            if 1e-4 <= abs(value) < 1e16 or value == 0.0:  # NaN fails both tests
                continue
            return False
        if kind is dict:
            if depth < _MAX_DEPTH and _plain_dict(value, depth + 1):
                continue
            return False
        if kind is list or kind is tuple:
            if depth < _MAX_DEPTH and _plain_seq(value, depth + 1):
                continue
            return False
        return False
    return True


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Encode `payload` as compact UTF-8 JSON; ``{}`` becomes ``b""``.

    Raises `PayloadError` if `payload` is not a mapping or JSON cannot encode it (NaN and infinities
    included). Exactly the standard-library codec's bytes and errors, about twice as fast on plain
    payloads (most of the time goes to the walk that proves a payload plain).
    """
    if type(payload) is dict and payload and _plain_dict(payload, 0):
        try:
            return _encode(payload)
        except (TypeError, ValueError, RecursionError):
            pass  # lone surrogates, integers beyond the str conversion limit: the stdlib decides
    return _codec_stdlib.encode_payload(payload)


def decode_payload(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode raw bytes into a fresh dict; ``b""`` decodes to ``{}``.

    Raises `PayloadError` for invalid UTF-8, invalid JSON (NaN/Infinity included, and numbers too large
    for a float such as ``1e400``) or JSON that is not an object; exactly the standard-library codec's
    values and errors.
    """
    if type(data) is not bytes or not data:  # msgspec would also read str; bytes is the hot path
        return _codec_stdlib.decode_payload(data)
    try:
        value = _decode(data)
    except (msgspec.DecodeError, RecursionError):
        value = None  # the stdlib codec gives the precise error (or reads what msgspec does not)
    if type(value) is dict:
        return value
    return _codec_stdlib.decode_payload(data)
