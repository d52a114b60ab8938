"""The benchmark's trace generator (benchmarks/make_traces.py), importable by tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def make_traces() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "make_traces.py"
    spec = importlib.util.spec_from_file_location("make_traces", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
