"""The JSON payload codec: compact UTF-8 JSON objects, ``{}`` <-> ``b""``, PayloadError for the rest."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from cascade.connectors.protocol import ConnectorError, PayloadError, decode_payload, encode_payload


class _CustomMapping(Mapping[str, Any]):
    """A Mapping that is not a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_encoding_is_compact_json() -> None:
    assert encode_payload({"a": 1, "b": [1, 2], "c": {"d": None}}) == b'{"a":1,"b":[1,2],"c":{"d":null}}'


def test_encoding_is_utf8_without_unicode_escapes() -> None:
    data = encode_payload({"name": "héllo €😀"})
    assert data == '{"name":"héllo €😀"}'.encode()
    assert b"\\u" not in data


def test_empty_object_is_the_empty_payload() -> None:
    assert encode_payload({}) == b""
    assert decode_payload(b"") == {}
    assert decode_payload(bytearray()) == {}
    assert decode_payload(memoryview(b"")) == {}
    assert encode_payload(MappingProxyType({})) == b""


def test_explicit_empty_json_object_also_decodes_to_empty_dict() -> None:
    assert decode_payload(b"{}") == {}
    assert decode_payload(b"  { }  ") == {}


def test_round_trip() -> None:
    payload = {"s": "x", "i": -3, "f": 1.5, "b": True, "n": None, "l": [1, "a", {"k": []}], "o": {}}
    assert decode_payload(encode_payload(payload)) == payload


@pytest.mark.parametrize(
    "mapping",
    [
        OrderedDict([("a", 1)]),
        MappingProxyType({"a": 1}),
        _CustomMapping({"a": 1}),
    ],
)
def test_mappings_that_are_not_dicts_are_encoded(mapping: Mapping[str, Any]) -> None:
    assert encode_payload(mapping) == b'{"a":1}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinities_are_refused_on_encode(value: float) -> None:
    with pytest.raises(PayloadError) as info:
        encode_payload({"x": value})
    assert "not JSON-encodable" in info.value.problem
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("payload", [[1, 2], "text", 3, None, b"{}", {1, 2}, ("a", 1)])
def test_non_mappings_are_refused_on_encode(payload: Any) -> None:
    with pytest.raises(PayloadError, match="must be a mapping"):
        encode_payload(payload)


@pytest.mark.parametrize(
    "payload",
    [
        {"x": object()},
        {"x": b"bytes"},
        {"x": {1, 2}},
        {("tuple", "key"): 1},
        {"x": 1 + 2j},
    ],
)
def test_non_serialisable_values_are_refused_on_encode(payload: dict[Any, Any]) -> None:
    with pytest.raises(PayloadError, match="not JSON-encodable") as info:
        encode_payload(payload)
    assert info.value.__cause__ is not None


def test_circular_payload_is_refused_on_encode() -> None:
    payload: dict[str, Any] = {}
    payload["self"] = payload
    with pytest.raises(PayloadError):
        encode_payload(payload)


def test_payload_error_is_a_connector_error_and_a_value_error() -> None:
    with pytest.raises(PayloadError) as info:
        encode_payload({"x": float("nan")})
    assert isinstance(info.value, ConnectorError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b'{"a":"\xc3"}', "not UTF-8"),
        (b"{", "not valid JSON"),
        (b"not json", "not valid JSON"),
        (b'{"a":1,}', "not valid JSON"),
        (b'{"a":NaN}', "not valid JSON"),
        (b'{"a":Infinity}', "not valid JSON"),
        (b'{"a":-Infinity}', "not valid JSON"),
        (b'{"a":1e400}', "not valid JSON"),
        (b'{"a":-1e400}', "not valid JSON"),
        (b"[1,2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"3", "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"true", "must be a JSON object"),
        (b" ", "not valid JSON"),
    ],
)
def test_bad_inbound_bytes_raise_payload_error(data: bytes, problem: str) -> None:
    with pytest.raises(PayloadError) as info:
        decode_payload(data)
    assert problem in info.value.problem


def test_deeply_nested_json_is_refused_not_crashed() -> None:
    depth = 100_000
    data = b'{"a":' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(PayloadError):
        decode_payload(data)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    assert decode_payload(bytearray(b'{"a":1}')) == {"a": 1}
    assert decode_payload(memoryview(b'{"a":1}')) == {"a": 1}


def test_each_decode_returns_a_fresh_dict() -> None:
    data = b'{"a":{"b":[1]}}'
    first = decode_payload(data)
    second = decode_payload(data)
    assert first == second
    assert first is not second
    assert first["a"] is not second["a"]
    first["a"]["b"].append(2)
    assert decode_payload(data) == {"a": {"b": [1]}}
    empty_first = decode_payload(b"")
    empty_first["x"] = 1
    assert decode_payload(b"") == {}


def test_encoding_does_not_mutate_the_payload() -> None:
    payload = {"a": [1, 2], "b": {"c": 1}}
    encode_payload(payload)
    assert payload == {"a": [1, 2], "b": {"c": 1}}


def test_encoding_matches_json_dumps_semantics() -> None:
    payload = {"z": 1, "a": [1.5, -0.0, 10**30], "u": "ü"}
    assert json.loads(encode_payload(payload)) == payload
