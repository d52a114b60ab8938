"""Indented JSON, byte-for-byte what ``json.dumps(data, indent=2, sort_keys=True,
ensure_ascii=False)`` writes, several times faster.

The standard library serializes with its C encoder only without ``indent``; with it every value
goes through a generator-based Python encoder. Run and scan outputs are indented (they are read
by people and diffed), and large (every witness carries its proof tree), so this writer builds
the same text directly: strings through the C string encoder, numbers through ``repr``, and the
same separators, indentation and key order. ``tests/test_perf.py`` compares it with
``json.dumps`` on generated documents.

>>> print(dumps_indented({"b": [1, 2.5, None], "a": {"y": "é"}, "c": []}))
{
  "a": {
    "y": "é"
  },
  "b": [
    1,
    2.5,
    null
  ],
  "c": []
}
"""

from __future__ import annotations

import json.encoder
from typing import Any

_enc = json.encoder.encode_basestring  # the C implementation when available (ensure_ascii=False)
_INF = float("inf")


def _floatstr(o: float) -> str:
    if o != o:
        return "NaN"
    if o == _INF:
        return "Infinity"
    if o == -_INF:
        return "-Infinity"
    return float.__repr__(o)


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, float):
        return _floatstr(k)
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, int):
        return int.__repr__(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


def dumps_indented(data: Any) -> str:
    """``json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)``."""
    out: list[str] = []
    _write(data, out, "\n")
    return "".join(out)


def dumps_indented_at(data: Any, depth: int) -> str:
    r""":func:`dumps_indented` of ``data`` as it is written nested ``depth`` levels deep (its
    lines indented by ``2 * depth`` more spaces, the first one not): to write a document
    piece by piece.

    >>> doc = {"a": [{"b": 1}, {"c": [2]}]}
    >>> pieces = ",\n    ".join(dumps_indented_at(x, 2) for x in doc["a"])
    >>> dumps_indented(doc) == '{\n  "a": [\n    ' + pieces + '\n  ]\n}'
    True
    """
    out: list[str] = []
    _write(data, out, "\n" + "  " * depth)
    return "".join(out)


def _write(o: Any, out: list[str], nl: str) -> None:
    if isinstance(o, str):
        out.append(_enc(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_floatstr(o))
    elif isinstance(o, list | tuple):
        if not o:
            out.append("[]")
            return
        inner = nl + "  "
        sep = "[" + inner
        for v in o:
            out.append(sep)
            _write(v, out, inner)
            sep = "," + inner
        out.append(nl + "]")
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        inner = nl + "  "
        sep = "{" + inner
        for k, v in sorted(o.items()):
            out.append(sep + _enc(_key(k)) + ": ")
            _write(v, out, inner)
            sep = "," + inner
        out.append(nl + "}")
    else:
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")
