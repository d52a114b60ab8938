"""``--executor ray``: a run's cases or a scan's records evaluated by Ray actors, on a local
runtime or a cluster.

Each actor loads the rules, the domain and the engine once (:class:`RunnerSpec` /
:class:`ScanSpec`: what it needs to rebuild them), then takes chunks of cases or records; the
driver keeps a few chunks per actor in flight and collects results in submission order, so the
files written are byte-identical to ``--jobs 1``'s. On a cluster every node needs this package
(the same version) installed, ``pip install 'policystrata[ray]'``, and a domain, rule file or
scan config given by path must be readable at the same path on every node.

Use ``--jobs N`` on one machine (forked workers, no startup cost) and Ray across machines, for
runs large enough to amortize the runtime's start (several seconds) and the transfer of cases
and results.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policystrata.errors import InputError


@dataclass(frozen=True)
class RunnerSpec:
    """What a remote worker needs to rebuild the run's
    :class:`~policystrata.bench.runner.Runner`."""

    domain: str  # a built-in domain name or a domain directory
    extra_rules: tuple[str, ...] = ()
    minimize: bool = True

    def runner(self) -> Any:
        from policystrata.bench.runner import Runner
        from policystrata.check import Checker

        domain: str | Path = self.domain
        if Path(self.domain).is_dir():
            domain = Path(self.domain)
        checker = Checker.open(domain, extra_rule_paths=[Path(p) for p in self.extra_rules])
        return Runner(checker, minimize=self.minimize)

    def worker(self) -> Any:
        from policystrata.bench.runner import _outcome

        runner = self.runner()
        return lambda chunk: [_outcome(runner, case) for case in chunk]


@dataclass(frozen=True)
class ScanSpec:
    """What a remote worker needs to check a scan's records: the scan config (its domain, rules
    and tenancy), read again from its path."""

    config: str
    no_fuzz: bool = False  # --no-fuzz: the clean records are not fuzzed

    def worker(self) -> Any:
        from policystrata.check import Checker
        from policystrata.scan.config import load_scan_config
        from policystrata.scan.run import CleanMemo, Fuzzer, check_records, prepare_domain

        cfg = load_scan_config(Path(self.config))
        checker = Checker.open(
            cfg.domain_ref(), extra_rule_paths=cfg.rule_paths(), prepare=prepare_domain(cfg)
        )
        fuzzer = Fuzzer.of(cfg, checker, self.no_fuzz)
        memo = CleanMemo()
        return lambda chunk: check_records(checker, chunk, fuzzer, memo)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(
            "--executor ray needs Ray: pip install 'policystrata[ray]' (or uv sync --extra ray)"
        ) from None
    return ray


def ray_map(
    spec: RunnerSpec | ScanSpec, chunks: Iterable[list[Any]], address: str | None, workers: int
) -> Iterator[list[Any]]:
    """Each chunk's results, in order, from ``workers`` Ray actors, each built once from
    ``spec`` (a local runtime with that many CPUs when ``address`` is None, else the cluster at
    ``address``; ``workers`` 0: one actor per CPU of the cluster)."""
    import os

    # Under `uv run` Ray would rebuild the uv environment on its workers from the working
    # directory; the workers run this interpreter (local) or the nodes' installation (cluster).
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    ray = _ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
        }
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = workers
        try:
            ray.init(**kwargs)
        except Exception as exc:  # unreachable cluster, bad address
            raise InputError(f"cannot start or join the Ray cluster: {exc}") from None
        started = True
    try:

        @ray.remote(num_cpus=1)
        class _Worker:
            def __init__(self, spec: RunnerSpec | ScanSpec) -> None:
                self.fn: Any = spec.worker()

            def run(self, chunk: list[Any]) -> list[Any]:
                return self.fn(chunk)

        if workers <= 0:
            workers = int(ray.cluster_resources().get("CPU", 1))
        actors = [_Worker.remote(spec) for _ in range(max(1, workers))]  # type: ignore[attr-defined]
        pending: deque[Any] = deque()
        for turn, chunk in enumerate(chunks):
            pending.append(actors[turn % len(actors)].run.remote(chunk))
            if len(pending) >= 3 * len(actors):
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())
        for actor in actors:
            ray.kill(actor)
    finally:
        if started:
            ray.shutdown()
