"""The cyclic garbage collector, tuned for a long run (``strata run``, ``strata scan``).

What is loaded before the run (rules, policy facts, the engine's pyDatalog clauses: ~70k
objects) lives as long as the run: it is frozen out of the collections (and, in forked workers,
stays shared with the parent instead of being copied when a collection touches it), and the
youngest generation is collected every 10,000 allocations instead of 700. Measured on 1,107
fuzz-mutant evaluations: 30.3 s -> 27.5 s CPU (with the collector off: 26.6 s). The collector
stays on: the remaining cycles (sqlglot trees, proof closures) are collected.

>>> import gc
>>> before = gc.get_threshold()
>>> with tuned():
...     gc.get_threshold()[0]
10000
>>> gc.get_threshold() == before
True
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000
UNITS_PER_COLLECTION = 32  # units of work (cases) between two collections, when managed
COLLECTIONS_PER_FULL = 16  # of those, every 16th is a full collection

_managed = {"on": False, "units": 0, "collections": 0}


@contextmanager
def tuned(managed: bool = False) -> Iterator[None]:
    """For the block: what exists now frozen, the youngest generation collected less often;
    both restored afterwards. ``managed``: the collector does not run on its own at all in the
    block; the caller calls :func:`between_units` after each unit of work (a case), and every
    ``UNITS_PER_COLLECTION`` units the young generations are collected there, when a unit's
    temporaries are gone (every ``COLLECTIONS_PER_FULL``-th time, all generations)."""
    thresholds = gc.get_threshold()
    was_enabled = gc.isenabled()
    saved = dict(_managed)
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
    if managed:
        gc.disable()
        _managed.update(on=True, units=0, collections=0)
    try:
        yield
    finally:
        _managed.update(saved)
        gc.set_threshold(*thresholds)
        if was_enabled:
            gc.enable()
        gc.unfreeze()


def between_units() -> None:
    """A unit of work (a case) ended: collect if it is time (only inside ``tuned(managed=True)``;
    elsewhere nothing).

    >>> with tuned(managed=True):
    ...     gc.isenabled(), [between_units() for _ in range(UNITS_PER_COLLECTION)][-1]
    (False, None)
    >>> gc.isenabled()
    True
    """
    if not _managed["on"]:
        return
    _managed["units"] += 1
    if _managed["units"] % UNITS_PER_COLLECTION:
        return
    _managed["collections"] += 1
    gc.collect(2 if _managed["collections"] % COLLECTIONS_PER_FULL == 0 else 1)
