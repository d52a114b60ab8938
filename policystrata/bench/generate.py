"""Generated suites: cases drawn across the whole policy, lazily, de-duplicated.

Streams (each a different generator stream, so their cases differ):

- ``generated``: every fault operator in turn (round robin in a seed-shuffled order), each on a
  request drawn until the operator has a mutation point in it; principals, metrics (canonical,
  aliases, denied, unknown), dimension sets, filters, time ranges and limits across the policy,
  allowed and denied.
- ``heldout_v1``: the same draw with its own stream and default seed; a case is kept by exactly
  one of ``generated`` / ``heldout_v1`` (split on the digest of its identity), so the two never
  share a case whatever the seeds and counts.
- ``clean_controls``: fault-free cases, allowed and denied, each lowered in one of the
  compiler's legitimate styles (plain, table aliases, CTE, bound parameters).

``count`` is the number of draws; a draw whose (fault, principal, IR, style) was already produced
is not repeated, so a run reports how many distinct cases it produced.

>>> from policystrata.model import load_domain
>>> cases = list(generate(load_domain("support_saas"), "generated", count=20, seed=7))
>>> len(cases) <= 20, len({c.key() for c in cases}) == len(cases)
(True, True)
"""

from __future__ import annotations

import csv
import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from policystrata.bench.cases import BenchCase
from policystrata.ir import Filter, SemanticQuery
from policystrata.model import Domain, split_column
from policystrata.stack.compiler import STYLES
from policystrata.stack.faults import OPERATORS, Operator
from policystrata.stack.manifest import role_dimensions, role_metrics
from policystrata.stack.pipeline import Request, run_stack

STREAMS = ("generated", "heldout_v1", "clean_controls")
DEFAULT_SEEDS = {"generated": 1729, "heldout_v1": 20260601, "clean_controls": 1}
LIMITS = (10, 25, 50, 100, 100, 100, 200, 500, 1000, 2000, 5000, None)
MAX_TRIES = 60


@dataclass
class GenStats:
    """What a generator produced (read after the stream is exhausted)."""

    draws: int = 0
    produced: int = 0
    duplicates: int = 0
    other_partition: int = 0
    no_mutation_point: int = 0
    per_operator: dict[str, int] = field(default_factory=dict)


@lru_cache(maxsize=8)
def _seed_values(seed_path: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """(table, column) -> distinct string values in seed.sql's INSERT statements."""
    path = Path(seed_path)
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    out: dict[tuple[str, str], set[str]] = {}
    for m in re.finditer(r"INSERT INTO (\w+)\s*\(([^)]*)\)\s*VALUES(.*?);", text, re.S | re.I):
        table = m.group(1)
        cols = [c.strip() for c in m.group(2).split(",")]
        for row in re.finditer(r"\(((?:[^()']|'(?:[^']|'')*')*)\)", m.group(3)):
            values = next(csv.reader([row.group(1)], quotechar="'", skipinitialspace=True))
            for col, value in zip(cols, values, strict=False):
                value = value.strip()
                if value and value.upper() != "NULL":
                    out.setdefault((table, col), set()).add(value)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def filter_values(domain: Domain, dimension: str) -> tuple[str, ...]:
    """Values a filter on ``dimension`` may compare with (from seed.sql; few per column)."""
    dim = domain.policy.dimensions.get(dimension)
    if dim is None:
        return ()
    table, col = split_column(dim.column)
    values = _seed_values(str(domain.path / "seed.sql")).get((table, col), ())
    if len(values) > 6 or any(len(v) > 12 for v in values):
        return ()  # identifiers, e-mails, dates: not what a filter in a metric question uses
    return values


class _Drawer:
    """Draws requests across the policy with one RNG."""

    def __init__(self, domain: Domain, rng: random.Random) -> None:
        self.d = domain
        self.rng = rng
        pol = domain.policy
        self.principals = sorted(pol.principals)
        self.metrics = sorted(pol.metrics)
        self.aliases = sorted(a for m in pol.metrics.values() for a in m.aliases)
        self.dimensions = sorted(pol.dimensions)
        self.labels = sorted(domain.time_ranges())
        self.filterable = [d for d in self.dimensions if filter_values(domain, d)]

    def request(self, allowed_bias: float = 0.75) -> Request:
        rng, pol = self.rng, self.d.policy
        principal = rng.choice(self.principals)
        role = pol.principals[principal].role
        r_metrics = role_metrics(self.d, role) or self.metrics
        r_dims = role_dimensions(self.d, role) or self.dimensions
        r_labels = sorted(pol.roles[role].allowed_time_ranges) or self.labels
        allowed = rng.random() < allowed_bias
        roll = rng.random()
        if allowed or roll < 0.6:
            metric = rng.choice(r_metrics)
        elif roll < 0.8:
            metric = rng.choice(self.metrics)
        elif roll < 0.95 and self.aliases:
            metric = rng.choice(self.aliases)
        else:
            metric = rng.choice(("revenue", "ticket_total", "churn_rate"))
        pool = r_dims if allowed or rng.random() < 0.6 else self.dimensions
        k = rng.choice((0, 1, 1, 1, 2, 2, 3))
        dims = tuple(sorted(rng.sample(pool, min(k, len(pool)))))
        filters: list[Filter] = []
        if self.filterable and rng.random() < 0.3:
            fdims = [d for d in self.filterable if d in r_dims] if allowed else self.filterable
            if fdims:
                fd = rng.choice(fdims)
                values = filter_values(self.d, fd)
                if rng.random() < 0.5:
                    filters.append(Filter(dimension=fd, op="=", values=(rng.choice(values),)))
                else:
                    picked = tuple(sorted(rng.sample(values, min(2, len(values)))))
                    filters.append(Filter(dimension=fd, op="in", values=picked))
        roll = rng.random()
        if allowed or roll < 0.7:
            time_range: str | None = rng.choice(r_labels)
        elif roll < 0.93:
            time_range = rng.choice(self.labels)
        else:
            time_range = None
        limit = rng.choice(LIMITS[:9] if allowed else LIMITS)
        query = SemanticQuery(
            metric=metric,
            dimensions=dims,
            filters=tuple(filters),
            time_range=time_range,
            limit=limit,
        )
        return Request(principal, query)

    def near_miss(self) -> Request:
        """An allowed request with one dimension swapped for one the role may not use: denied
        for that one reason only (where a validator that skips a check decides differently)."""
        req = self.request(allowed_bias=1.0)
        role = self.d.policy.principals[req.principal].role
        outside = [d for d in self.dimensions if d not in set(role_dimensions(self.d, role))]
        if not outside:
            return req
        dims = list(req.query.dimensions)
        pick = self.rng.choice(outside)
        if dims:
            dims[self.rng.randrange(len(dims))] = pick
        else:
            dims = [pick]
        query = req.query.model_copy(update={"dimensions": tuple(sorted(set(dims)))})
        return Request(req.principal, query)


def _live(op: Operator, domain: Domain, req: Request) -> bool:
    """The operator has a live mutation point in the request (a request the reference stack
    cannot build on this domain has none)."""
    try:
        return op.live_at(domain, req, run_stack(domain, req))
    except Exception:
        return False


def _partition_bit(key: tuple[str, ...]) -> int:
    return hashlib.sha256("\x1f".join(key).encode()).digest()[0] & 1


def generate(
    domain: Domain,
    stream: str,
    count: int,
    seed: int | None = None,
    operators: list[str] | None = None,
    stats: GenStats | None = None,
    start_index: int = 0,
) -> Iterator[BenchCase]:
    """Lazily yield up to ``count`` distinct cases of ``stream``."""
    if stream not in STREAMS:
        raise ValueError(f"unknown generated stream {stream!r}")
    stats = stats if stats is not None else GenStats()
    seed = DEFAULT_SEEDS[stream] if seed is None else seed
    rng = random.Random(f"policystrata:{stream}:{seed}")
    drawer = _Drawer(domain, rng)
    seen: set[bytes] = set()
    ops: list[Operator] = [OPERATORS[o] for o in (operators or list(OPERATORS))]
    order = list(ops)
    rng.shuffle(order)
    want_bit = {"generated": 0, "heldout_v1": 1}.get(stream)
    index = start_index
    for i in range(count):
        stats.draws += 1
        if stream == "clean_controls":
            req = drawer.request(allowed_bias=0.6)
            style = rng.choice(STYLES)
            case = BenchCase(
                index=index,
                task_id=f"control_{i + 1:04d}",
                principal=req.principal,
                query=req.query,
                style=style,
                expected_class="clean",
                source=f"{stream}(seed={seed})",
            )
        else:
            op = order[i % len(order)]
            found = None
            for attempt in range(MAX_TRIES):
                # operators whose mutation point is live only on a near miss get those draws too
                near = op.live is not None and attempt % 2 == 1
                req = drawer.near_miss() if near else drawer.request()
                if (
                    want_bit is not None
                    and _partition_bit(("x", op.id, req.principal, req.query.to_text(), "plain"))
                    != want_bit
                ):
                    stats.other_partition += 1
                    continue
                if _live(op, domain, req):
                    found = req
                    break
            if found is None:
                stats.no_mutation_point += 1
                continue
            case = BenchCase(
                index=index,
                task_id=f"{stream}_{i + 1:04d}",
                principal=found.principal,
                query=found.query,
                mutation=op.id,
                expected_class=op.witness_class,
                expected_surface=op.surface,
                source=f"{stream}(seed={seed})",
            )
        digest = hashlib.sha256("\x1f".join(case.key()).encode()).digest()[:16]
        if digest in seen:
            stats.duplicates += 1
            continue
        seen.add(digest)
        stats.produced += 1
        stats.per_operator[case.mutation] = stats.per_operator.get(case.mutation, 0) + 1
        index += 1
        yield case
