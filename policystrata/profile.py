"""Cheap stage timers for performance work, off unless ``STRATA_PROFILE`` is set.

A stage is a named block (``lowering``, ``engine``, ``proofs``, ``proof_check``,
``minimization``, ``stack``, ``io``). Stages nest: time spent in an inner stage is not counted
in the outer one, so the stages of a run partition its measured time. With the variable unset,
:func:`stage` returns one shared no-op context (a dictionary lookup and a call per block).

``STRATA_PROFILE=1`` prints the table to stderr when the process ends; ``STRATA_PROFILE=PATH``
writes it as JSON to ``PATH`` (``PATH.<pid>`` from worker processes), for the benchmark harness.

>>> p = Profiler()
>>> with p.stage("engine"):
...     with p.stage("proofs"):
...         pass
>>> sorted(p.report())
['engine', 'proofs']
>>> p.report()["proofs"]["count"]
1
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

ENV = "STRATA_PROFILE"

_NULL = nullcontext()


class Profiler:
    """Exclusive CPU and wall time per stage, and how often each stage was entered."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self._stack: list[str] = []
        self._since = (0.0, 0.0)

    def _charge(self, now: tuple[float, float]) -> None:
        if self._stack:
            name = self._stack[-1]
            self.cpu[name] = self.cpu.get(name, 0.0) + now[0] - self._since[0]
            self.wall[name] = self.wall.get(name, 0.0) + now[1] - self._since[1]
        self._since = now

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._charge((time.process_time(), time.perf_counter()))
        self._stack.append(name)
        self.count[name] = self.count.get(name, 0) + 1
        try:
            yield
        finally:
            self._charge((time.process_time(), time.perf_counter()))
            self._stack.pop()

    def report(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "cpu_s": round(self.cpu.get(name, 0.0), 4),
                "wall_s": round(self.wall.get(name, 0.0), 4),
                "count": self.count[name],
            }
            for name in sorted(self.count)
        }

    def merge(self, other: dict[str, dict[str, Any]]) -> None:
        """Add another process's :meth:`report` (worker processes of ``--jobs``)."""
        for name, row in other.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + row["cpu_s"]
            self.wall[name] = self.wall.get(name, 0.0) + row["wall_s"]
            self.count[name] = self.count.get(name, 0) + row["count"]


_PROFILER: Profiler | None = None


def enabled() -> bool:
    return _PROFILER is not None


def stage(name: str) -> AbstractContextManager[None]:
    """Time the block as stage ``name`` (a no-op unless ``STRATA_PROFILE`` is set)."""
    if _PROFILER is None:
        return _NULL
    return _PROFILER.stage(name)


def report() -> dict[str, dict[str, Any]]:
    return _PROFILER.report() if _PROFILER is not None else {}


def reset() -> None:
    """Start counting afresh (a forked worker process: its parent's counts are the parent's)."""
    if _PROFILER is not None:
        _PROFILER.__init__()  # type: ignore[misc]


def merge(other: dict[str, dict[str, Any]]) -> None:
    if _PROFILER is not None:
        _PROFILER.merge(other)


def _write(main_pid: int) -> None:
    if _PROFILER is None:
        return
    target = os.environ.get(ENV, "")
    data = _PROFILER.report()
    if target in ("1", "true", "yes"):
        width = max((len(n) for n in data), default=5)
        print(f"{'stage':<{width}}  {'cpu s':>9}  {'wall s':>9}  {'count':>8}", file=sys.stderr)
        for name, row in data.items():
            print(
                f"{name:<{width}}  {row['cpu_s']:>9.3f}  {row['wall_s']:>9.3f}  {row['count']:>8}",
                file=sys.stderr,
            )
        return
    path = target if os.getpid() == main_pid else f"{target}.{os.getpid()}"
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"pid": os.getpid(), "stages": data}, handle, indent=1, sort_keys=True)


def _install() -> None:
    global _PROFILER
    if os.environ.get(ENV) and _PROFILER is None:
        _PROFILER = Profiler()
        atexit.register(_write, os.getpid())


_install()
