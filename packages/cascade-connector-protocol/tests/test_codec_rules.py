"""The payload rules one by one, checked for both codecs (the standard library's and the fast one).

The generated comparisons live in test_codec_paths.py; here each rule has its expected outcome.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import uuid
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from cascade.connectors.protocol import PayloadError, _codec_fast, _codec_stdlib


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Mode(enum.StrEnum):
    FAST = "fast"


class Text(str):
    pass


class Reversed(dict[str, Any]):
    """A dict subclass whose items() disagrees with its storage order."""

    def items(self) -> Any:
        return list(reversed(list(super().items())))


@dataclasses.dataclass
class Point:
    x: int = 1


Pair = collections.namedtuple("Pair", "a b")


class ReadOnly(Mapping[str, Any]):
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def _moved() -> collections.OrderedDict[str, int]:
    ordered = collections.OrderedDict(a=1, b=2)
    ordered.move_to_end("a")  # iteration order b, a; storage order a, b
    return ordered


def _id(value: Any) -> str:
    """A short, stable test id (no memory addresses, no 5000-digit integers)."""
    try:
        text = repr(value)
    except ValueError:
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


CODECS = [
    pytest.param((_codec_stdlib.encode_payload, _codec_stdlib.decode_payload), id="stdlib"),
    pytest.param((_codec_fast.encode_payload, _codec_fast.decode_payload), id="fast"),
]
Codec = tuple[Callable[[Any], bytes], Callable[[Any], dict[str, Any]]]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    ("payload", "wire"),
    [
        ({"a": 1, "b": [1, (2, 3)], "c": {"d": None}}, b'{"a":1,"b":[1,[2,3]],"c":{"d":null}}'),
        ({2: "a", True: "b", None: "c", 1.5: "d"}, b'{"2":"a","true":"b","null":"c","1.5":"d"}'),
        ({1: "a", "1": "b"}, b'{"1":"a","1":"b"}'),  # both keep what json.dumps writes
        ({"big": 2**64, "neg": -(2**63) - 1}, b'{"big":18446744073709551616,"neg":-9223372036854775809}'),
        ({"f": [1e16, 1e-5, -0.0, 1234.5]}, b'{"f":[1e+16,1e-05,-0.0,1234.5]}'),
        ({"s": "é\u2028\x00"}, '{"s":"é\u2028\\u0000"}'.encode()),
        ({"e": Level.HIGH, "m": Mode.FAST, "t": Text("x")}, b'{"e":3,"m":"fast","t":"x"}'),
        ({"o": _moved(), "r": Reversed(a=1, b=2)}, b'{"o":{"b":2,"a":1},"r":{"b":2,"a":1}}'),
        ({"p": Pair(1, 2)}, b'{"p":[1,2]}'),
        (ReadOnly({"a": 1}), b'{"a":1}'),
        ({}, b""),
        (MappingProxyType({}), b""),
    ],
)
def test_what_both_codecs_write(codec: Codec, payload: Any, wire: bytes) -> None:
    encode, _ = codec
    assert encode(payload) == wire


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "payload",
    [
        {"x": float("nan")},
        {"x": [float("inf")]},
        {float("nan"): 1},
        {"x": Colour.RED},
        {"x": uuid.UUID(int=1)},
        {"x": Point()},
        {"x": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)},
        {"x": decimal.Decimal("1")},
        {"x": b"b"},
        {"x": {1}},
        {"x": MappingProxyType({"a": 1})},
        {Colour.RED: 1},
        {("t",): 1},
        {"x": "\ud800"},
        {"x": 10**5000},
        [("a", 1)],
        "text",
    ],
    ids=_id,
)
def test_what_both_codecs_refuse(codec: Codec, payload: Any) -> None:
    encode, _ = codec
    with pytest.raises(PayloadError):
        encode(payload)


def _nested(depth: int) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    inner = payload
    for _ in range(depth):
        inner["a"] = {}
        inner = inner["a"]
    return payload


@pytest.mark.parametrize("codec", CODECS)
def test_nesting_within_reason_works_and_beyond_is_a_payload_error(codec: Codec) -> None:
    encode, decode = codec
    for depth in (40, 300):  # past the fast codec's walk, past msgspec's usual limits
        wire = encode(_nested(depth))
        assert wire == b'{"a":' * depth + b"{}" + b"}" * depth
        assert decode(wire) == _nested(depth)
    with pytest.raises(PayloadError):
        encode(_nested(100_000))
    circular: dict[str, Any] = {}
    circular["self"] = circular
    with pytest.raises(PayloadError):
        encode(circular)
    for deep in (b'{"a":' * 100_000 + b"}" * 100_000, b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
        with pytest.raises(PayloadError) as info:
            decode(deep)
        assert isinstance(info.value.__cause__, RecursionError)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"", {}),
        (b"{}", {}),
        (b' \t\r\n{"a" : 1 }\n', {"a": 1}),
        (b'{"a":1,"b":2,"a":3}', {"a": 3, "b": 2}),
        (b'{"n":18446744073709551616,"m":-9223372036854775809}', {"n": 2**64, "m": -(2**63) - 1}),
        (b'{"f":1E2,"g":-0.0,"h":1e-400,"i":0}', {"f": 100.0, "g": -0.0, "h": 0.0, "i": 0}),
        (b'{"s":"\\ud800"}', {"s": "\ud800"}),  # an escaped lone surrogate: the stdlib reads it
        (b'{"s":"\\ud83d\\ude00\x7f"}', {"s": "\U0001f600\x7f"}),
    ],
)
def test_what_both_codecs_read(codec: Codec, data: bytes, value: dict[str, Any]) -> None:
    _, decode = codec
    result = decode(data)
    assert repr(result) == repr(value)
    assert decode(data) is not result


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xef\xbb\xbf{}", "not valid JSON"),  # a byte order mark
        (b'{"a":"\xed\xa0\x80"}', "not UTF-8"),  # a surrogate encoded in UTF-8
        (b'{"a":NaN}', "not valid JSON"),
        (b'{"a":1e400}', "not valid JSON"),
        (b'{"a":' + b"1" * 5000 + b"}", "not valid JSON"),  # beyond the str-to-int limit
        (b'{"a":"\x01"}', "not valid JSON"),
        (b'{"a":01}', "not valid JSON"),
        (b'{"a":1}\x00', "not valid JSON"),
        (b"[{}]", "must be a JSON object"),
        (b"null", "must be a JSON object"),
    ],
)
def test_what_both_codecs_refuse_to_read(codec: Codec, data: bytes, problem: str) -> None:
    _, decode = codec
    with pytest.raises(PayloadError) as info:
        decode(data)
    assert problem in info.value.problem


@pytest.mark.parametrize("codec", CODECS)
def test_each_decode_is_a_fresh_object_graph(codec: Codec) -> None:
    _, decode = codec
    data = b'{"a":{"b":[1]},"c":{}}'
    first, second = decode(data), decode(data)
    assert first == second
    assert first is not second
    assert first["a"] is not second["a"]
    assert first["c"] is not second["c"]
    assert first["a"]["b"] is not second["a"]["b"]
    first["a"]["b"].append(2)
    assert decode(data) == {"a": {"b": [1]}, "c": {}}


@pytest.mark.parametrize("codec", CODECS)
def test_errors_keep_their_cause(codec: Codec) -> None:
    encode, decode = codec
    with pytest.raises(PayloadError) as info:
        encode({"x": float("nan")})
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(PayloadError) as info:
        decode(b"\xff")
    assert isinstance(info.value.__cause__, UnicodeDecodeError)
