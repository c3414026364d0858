"""The JSON payload codec every connector uses: a payload is always a JSON object.

Two implementations with identical results (bytes, values and errors): the standard library's,
always available, and a faster one built on msgspec, installed by
``pip install "cascade-connector-protocol[fast]"``. The environment variable ``CASCADE_CODEC`` is
read once, when this module is imported: unset, empty or ``auto`` picks the fast codec when msgspec
is importable and the standard library's otherwise; ``stdlib`` or ``fast`` force one (``fast``
without msgspec makes the import fail). `codec_name` says which one is in use.
"""

from __future__ import annotations

__all__ = ["encode_payload", "decode_payload", "codec_name"]

import os
from typing import Literal

CodecName = Literal["stdlib", "fast"]

_ENV = "CASCADE_CODEC"
_requested = os.environ.get(_ENV, "").strip().lower() or "auto"
if _requested not in ("auto", "stdlib", "fast"):
    raise ImportError(f"{_ENV}={_requested!r} is not a codec: use stdlib, fast or auto (or leave it unset)")

_name: CodecName
if _requested == "stdlib":
    from ._codec_stdlib import decode_payload, encode_payload

    _name = "stdlib"
else:
    try:
        from ._codec_fast import decode_payload, encode_payload
    except ModuleNotFoundError as exc:
        if exc.name != "msgspec":
            raise
        if _requested == "fast":
            raise ImportError(
                f"{_ENV}=fast needs msgspec: pip install 'cascade-connector-protocol[fast]'"
            ) from exc
        from ._codec_stdlib import decode_payload, encode_payload

        _name = "stdlib"
    else:
        _name = "fast"


def codec_name() -> CodecName:
    """The codec in use: ``"fast"`` (msgspec) or ``"stdlib"`` (the standard library's json)."""
    return _name
