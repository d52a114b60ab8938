"""Reading a run directory written by ``strata run`` (for the reports and exports).

A file that is missing or not JSON is an :class:`InputError` naming the file (and the line of
``traces.jsonl``), never a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policystrata.errors import InputError


@dataclass
class RunDir:
    path: Path
    metadata: dict[str, Any]
    summary: dict[str, Any]
    traces: list[dict[str, Any]]

    @property
    def name(self) -> str:
        """The run's name in outputs: the directory name (never an absolute path)."""
        return self.path.name


def _json_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError("not a run directory (missing file)", file=str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    if not isinstance(data, dict):
        raise InputError("expected a JSON object", file=str(path))
    return data


def read_run(run_dir: Path) -> RunDir:
    """metadata.json, summary.json and every record of traces.jsonl of a run directory."""
    meta = _json_file(run_dir / "metadata.json")
    summary = _json_file(run_dir / "summary.json")
    path = run_dir / "traces.jsonl"
    if not path.is_file():
        raise InputError("not a run directory (missing file)", file=str(path))
    traces: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not JSON: {exc.msg}", file=str(path), line=lineno) from None
            if not isinstance(rec, dict):
                raise InputError("expected a JSON object", file=str(path), line=lineno)
            traces.append(rec)
    return RunDir(run_dir, meta, summary, traces)
