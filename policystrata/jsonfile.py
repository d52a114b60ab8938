"""Reading a saved JSON document or JSONL file (witnesses, reports, a baseline scan), with
errors at the file:line:column Python's parser gives.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "f.jsonl"
>>> _ = p.write_text('{"a": 1}\\n\\n{"b": 2}\\n')
>>> read_json_documents(p)
[(1, {'a': 1}), (3, {'b': 2})]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from policystrata.errors import InputError


def read_json_documents(path: Path, what: str = "file") -> list[tuple[int | None, Any]]:
    """``[(line, value)]``: one per non-blank line of a ``.jsonl`` file, else the whole file's
    one value (line None). An unreadable file or bad JSON is an :class:`InputError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputError(f"cannot read {what}: {reason}", file=str(path)) from None
    jsonl = path.suffix == ".jsonl"
    chunks = (
        [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
        if jsonl
        else [(1, text)]
    )
    out: list[tuple[int | None, Any]] = []
    for first, chunk in chunks:
        try:
            out.append((first if jsonl else None, json.loads(chunk)))
        except json.JSONDecodeError as exc:
            raise InputError(
                f"not valid JSON: {exc.msg}",
                file=str(path),
                line=first + exc.lineno - 1,
                column=exc.colno,
            ) from None
        except RecursionError:
            raise InputError(
                "not valid JSON here: nested too deeply",
                file=str(path),
                line=first if jsonl else None,
            ) from None
    return out
