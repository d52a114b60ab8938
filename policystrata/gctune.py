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


@contextmanager
def tuned() -> Iterator[None]:
    """For the block: what exists now frozen, the youngest generation collected less often;
    both restored afterwards."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
