"""Worker processes for ``--jobs``: chunks of work mapped in order, a bounded number in flight.

Workers are forked once the caller has loaded what every chunk needs (rules, policy, engine),
so they load nothing again. Results come back in submission order, which is what keeps a run's
or a scan's outputs byte-identical whatever the number of jobs. At most ``3 * jobs`` chunks
are in flight, so memory stays bounded however long the input is.

A forked worker inherits its parent's signal handlers; it resets them, so that stopping the
pool never runs the parent's cleanup (e.g. a throwaway PostgreSQL server's SIGTERM handler) in
a worker. Stage timers of the workers are merged into the parent's (``STRATA_PROFILE``).

>>> list(ordered_map(_double, iter([[1, 2], [3]]), jobs=2))
[[2, 4], [6]]
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from policystrata import profile

T = TypeVar("T")
R = TypeVar("R")

_FN: Callable[[Any], Any] | None = None


def _init() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and stops the pool
    profile.reset()


def _call(chunk: Any) -> tuple[Any, tuple[int, dict[str, Any]]]:
    assert _FN is not None
    return _FN(chunk), (os.getpid(), profile.report())


def ordered_map(fn: Callable[[T], R], chunks: Iterable[T], jobs: int) -> Iterator[R]:
    """``fn`` over ``chunks`` in ``jobs`` forked processes (in this process when ``jobs`` is 1),
    results in order. ``fn`` may use anything loaded before the call (it is inherited)."""
    if jobs <= 1 or "fork" not in mp.get_all_start_methods():  # no fork (Windows): in here
        for chunk in chunks:
            yield fn(chunk)
        return
    global _FN
    _FN = fn
    reports: dict[int, dict[str, Any]] = {}
    pool = mp.get_context("fork").Pool(jobs, initializer=_init)
    try:
        pending: deque[Any] = deque()

        def take() -> R:
            result: R
            result, (pid, report) = pending.popleft().get()
            reports[pid] = report
            return result

        for chunk in chunks:
            pending.append(pool.apply_async(_call, (chunk,)))
            if len(pending) >= 3 * jobs:
                yield take()
        while pending:
            yield take()
        pool.close()
        pool.join()
    finally:
        pool.terminate()  # stopped early (an error, ^C, the consumer gave up): no waiting
        pool.join()
        _FN = None
    for report in reports.values():
        profile.merge(report)


def _double(chunk: list[int]) -> list[int]:
    return [2 * x for x in chunk]


def default_jobs() -> int:
    """The cores this process may use (on Linux; elsewhere 1: workers are forked, and forking
    is only dependable on Linux; ``--jobs N`` still asks for N)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return 1
