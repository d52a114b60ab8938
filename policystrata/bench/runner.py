"""Batch runs: stream a suite's cases through the reference stack (with the case's fault) and
the detector, score each verdict against its labels afterwards, and write the results as they
come.

Per case: run the fault-free stack; for a faulted case, check the operator has a mutation point,
run the stack with the faulty layer and compare artifact digests (no change = an equivalent
mutant, counted apart and never judged); then hand the detector the artifacts only, as a
:class:`~policystrata.case.Case` with an opaque id (``case_00042``) and the suite file + line as
origin. Fault ids, labels and surface versions stay in this module.

Output (``runs/<id>/``; byte-identical for the same inputs and seed, no timestamps or absolute
paths): ``traces.jsonl`` (one compact record per case), ``witnesses/<task>.json`` (the published
run-witness keys and the case's ``witnesses``, as ``strata explain`` reads them;
``<task>.min.json`` for the minimized case), ``summary.json`` and ``metadata.json``. Every file
carries the published keys (COMPAT.md §6, :mod:`policystrata.bench.published`) beside ours.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policystrata import __version__, gctune, profile
from policystrata.bench import published
from policystrata.bench.artifacts import ARTIFACT_DIR, artifact_blobs
from policystrata.bench.cases import BenchCase
from policystrata.bench.minimize import domain_orders, minimize_query
from policystrata.bench.score import Accumulator
from policystrata.check import Checker
from policystrata.facts import Provenance
from policystrata.ir import SemanticQuery
from policystrata.jsondump import dumps_indented
from policystrata.layers import LAYERS
from policystrata.model import Domain
from policystrata.paths import rule_files
from policystrata.stack.faults import OPERATORS, OTHER_DOMAIN_OPERATORS
from policystrata.stack.pipeline import Request, StackRun, changed_artifacts, run_stack
from policystrata.witness import Witness

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
STACK_MEMO_SIZE = 2048  # stack runs remembered across cases


def _dump(data: Any) -> str:
    return dumps_indented(data) + "\n"


def _line(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def _rank(w: Witness) -> tuple[int, str, str, str]:
    return (LAYERS.index(w.localized_surface), w.witness_class, w.check, str(w.key))


@dataclass
class Evaluation:
    """One case's outcome: the trace record, its witnesses and the stack run judged."""

    record: dict[str, Any]
    witnesses: list[Witness]
    run: StackRun | None = None
    minimized: list[Witness] | None = None
    reference: StackRun | None = None  # the fault-free stack's run of the same request


class Runner:
    """Evaluates benchmark cases with one :class:`Checker` (rules and policy facts load once)."""

    def __init__(self, checker: Checker, minimize: bool = True) -> None:
        self.checker = checker
        self.domain: Domain = checker.domain
        self.minimize = minimize
        # stack runs by (fault, principal, style, request), across cases (the stack is
        # deterministic; minimization steps of different cases meet), bounded; and per case the
        # last surviving minimization candidate (request key, artifact facts, evaluation)
        self._runs: dict[tuple[str, str, str, str], tuple[StackRun, StackRun | str]] = {}
        self._survivor: tuple[str, Any, Any] | None = None
        self._orders: dict[str | None, tuple[list[str], dict[str, int]]] = {}

    # -- one case ----------------------------------------------------------------------------

    def stack_runs(self, case: BenchCase, query: SemanticQuery) -> tuple[StackRun, StackRun | str]:
        """(fault-free run, faulted run or the reason the case is stillborn/equivalent); the
        stack is deterministic, so a request already run for this case is not run again."""
        key = (case.mutation, case.principal, case.style, _query_key(query))
        runs = self._runs.get(key)
        if runs is None:
            runs = self._stack_runs(case, query)
            self._runs[key] = runs
            if len(self._runs) > STACK_MEMO_SIZE:
                self._runs.pop(next(iter(self._runs)))
        else:
            self._runs[key] = self._runs.pop(key)  # most recently used last
        return runs

    def _stack_runs(self, case: BenchCase, query: SemanticQuery) -> tuple[StackRun, StackRun | str]:
        with profile.stage("stack"):
            return self._stack_runs_inner(case, query)

    def _stack_runs_inner(
        self, case: BenchCase, query: SemanticQuery
    ) -> tuple[StackRun, StackRun | str]:
        req = Request(case.principal, query, case.style)
        canonical = run_stack(self.domain, req)
        if case.is_control:
            return canonical, canonical
        op = OPERATORS.get(case.mutation)
        if op is None:
            if case.mutation in OTHER_DOMAIN_OPERATORS:
                return canonical, f"stillborn: operator {case.mutation} targets another domain"
            return canonical, f"stillborn: unknown fault operator {case.mutation}"
        if not op.fits(self.domain):
            return canonical, (
                f"stillborn: operator {op.id} acts on what this domain does not have "
                f"({op.description})"
            )
        if not op.applies(self.domain, req, canonical):
            return canonical, f"stillborn: no mutation point for {op.id} in this case"
        faulted = run_stack(self.domain, req, op.knobs(self.domain, req))
        if not changed_artifacts(canonical, faulted):
            return canonical, (
                f"equivalent: the {op.surface} layer produced the same artifact as the fault-free "
                f"stack ({op.description})"
            )
        return canonical, faulted

    def evaluate(self, case: BenchCase) -> Evaluation:
        self._survivor = None
        self._evidence: dict[str, Any] = {}
        try:
            ev = self._evaluate(case)
        finally:
            self._survivor = None
        ev.record.update(
            published.trace_keys(
                self.domain,
                case,
                ev.record,
                ev.run,
                ev.witnesses,
                self._evidence,
                self._canonical_decision(case),
                self._cost(case),
            )
        )
        return ev

    def _canonical_decision(self, case: BenchCase) -> tuple[bool, list[str]] | None:
        """The policy's decision on the request (the reference validator, fault-free)."""
        from policystrata.stack.validator import authorize

        if case.query is None:
            return None
        try:
            verdict = authorize(self.domain, case.principal, case.query)
        except (KeyError, ValueError):
            return None
        return verdict.decision == "allow", list(verdict.reasons)

    def _cost(self, case: BenchCase) -> int | None:
        from policystrata.lower.ir import ir_cost

        return ir_cost(case.query, self.domain) if case.query is not None else None

    def _evaluate(self, case: BenchCase) -> Evaluation:
        rec: dict[str, Any] = {
            "task": case.task_id,
            "case": f"case_{case.index:05d}",
            "mutation": case.mutation,
            "principal": case.principal,
            "ir": case.query.to_text() if case.query is not None else None,
            "style": case.style,
            "expected": {
                k: v
                for k, v in (
                    ("class", case.expected_class),
                    ("surface", case.expected_surface),
                    ("containment", case.expected_containment),
                )
                if v is not None
            },
        }
        if case.invalid is not None or case.query is None:
            rec.update(status="stillborn", reason=case.invalid or "no semantic query")
            return Evaluation(rec, [])
        try:
            canonical, outcome = self.stack_runs(case, case.query)
        except Exception as exc:  # the stack cannot build this case here: invalid, never a crash
            rec.update(status="invalid", reason=f"the reference stack failed: {_brief(exc)}")
            return Evaluation(rec, [])
        if isinstance(outcome, str):
            kind, reason = outcome.split(": ", 1)
            rec.update(status=kind, reason=reason, artifacts=canonical.digests())
            rec["reference_artifacts"] = rec["artifacts"]
            return Evaluation(rec, [], canonical, reference=canonical)
        run = outcome
        rec["artifacts"] = run.digests()
        rec["reference_artifacts"] = canonical.digests()
        if not case.is_control:
            rec["changed"] = changed_artifacts(canonical, run)
        detector_case = self._case(case, run, case.query, rec["case"])
        detector_case.reference_sql = canonical.sql  # real-row evidence only; never lowered
        detector_case.reference_params = dict(canonical.params)
        result = self.checker.check(detector_case)
        self._evidence = dict(self.checker.context.evidence)
        witnesses = sorted(result.witnesses, key=_rank)
        rec["verdict"] = result.verdict
        rec["classes"] = [w.witness_class for w in witnesses]
        rec["checks"] = [f"{w.localized_surface}.{w.check}" for w in witnesses]
        if witnesses:
            rec["localized"] = witnesses[0].localized_surface
            rec["containment"] = witnesses[0].containment_layer
            rec["witness"] = f"witnesses/{_SAFE.sub('_', case.task_id)}.json"
        if result.verdict == "error":
            rec.update(status="error", reason="; ".join(e.message for e in result.errors))
        elif case.is_control:
            rec["status"] = "false_positive" if witnesses else "clean"
        else:
            rec["status"] = "killed" if witnesses else "survived"
        minimized = None
        if witnesses and self.minimize:
            facts_before = self.checker.last_artifact_fact_count
            with profile.stage("minimization"):
                minimized = self._minimize(case, witnesses[0], rec, facts_before)
        return Evaluation(rec, witnesses, run, minimized, reference=canonical)

    def _case(self, case: BenchCase, run: StackRun, query: SemanticQuery, cid: str) -> Any:
        origin = Provenance(case.source, line=case.line)
        return run.to_case(cid, case.principal, query, origin)

    # -- minimization ------------------------------------------------------------------------

    def _survives(
        self, case: BenchCase, signature: tuple[str, str, str], cid: str
    ) -> Callable[[SemanticQuery], bool]:
        """Does the violation ``signature`` still derive for the case with this request? The
        last surviving candidate's artifact facts and evaluation are kept: the minimized case
        is that candidate (same case id ``cid``), and its check reuses them."""

        def survives(query: SemanticQuery) -> bool:
            try:
                _canonical, outcome = self.stack_runs(case, query)
            except Exception:  # a candidate the stack cannot build does not keep the violation
                return False
            if isinstance(outcome, str):
                return False
            c = self._case(case, outcome, query, cid)
            facts = self.checker.artifact_facts(c)
            result = self.checker.engine.evaluate(facts)
            atoms = result.atoms("violation")
            ok = any(_is(signature, a) for a in atoms)
            if ok:
                self._survivor = (_query_key(query), facts, result)
            return ok

        return survives

    def survives(
        self, case: BenchCase, signature: tuple[str, str, str], cid: str
    ) -> Callable[[SemanticQuery], bool]:
        """Does the violation ``signature`` (layer, class, check) derive for ``case`` with a
        given request (the stack re-run with its fault, then the rules)? What the minimizer
        asks, and what ``strata minimization-report`` re-asks to check 1-minimality."""
        return self._survives(case, signature, cid)

    def _minimize(
        self, case: BenchCase, witness: Witness, rec: dict[str, Any], facts_before: int
    ) -> list[Witness] | None:
        assert case.query is not None
        signature = (witness.localized_surface, witness.witness_class, witness.check)
        cid = rec["case"] + "_min"
        if case.principal not in self._orders:
            self._orders[case.principal] = domain_orders(self.domain, case.principal)
        m = minimize_query(
            self.domain,
            case.query,
            self._survives(case, signature, cid),
            orders=self._orders[case.principal],
        )
        out = None
        support = len(witness.supporting_facts)
        if m.ir_after != m.ir_before:
            from policystrata.ir import parse_ir

            q = parse_ir(m.ir_after)
            _c, faulted = self.stack_runs(case, q)  # ran (and survived) while minimizing
            if not isinstance(faulted, str):
                key, facts, result = self._survivor or (None, None, None)
                res = self.checker.check(
                    self._case(case, faulted, q, cid),
                    artifact_facts=facts if key == _query_key(q) else None,
                    evaluated=result if key == _query_key(q) else None,
                    keep=lambda a: _is(signature, a),
                )
                same = [
                    w
                    for w in res.witnesses
                    if (w.localized_surface, w.witness_class, w.check) == signature
                ]
                if same:
                    out = sorted(same, key=_rank)
                    support = len(out[0].supporting_facts)
        rec["minimized"] = {
            "ir": m.ir_after,
            "steps": m.steps,
            "evaluations": m.evaluations,
            "facts_before": facts_before,
            "facts_after": support,
            "fact_reduction": round(1 - support / facts_before, 4) if facts_before else 0.0,
        }
        return out


def _brief(exc: Exception) -> str:
    """``Type: first line of the message``."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _is(signature: tuple[str, str, str], atom: tuple[Any, ...]) -> bool:
    """Is the ``violation(C, Surface, Class, Check, Key)`` atom of this (surface, class, check)?"""
    return (str(atom[1]), str(atom[2]), str(atom[3])) == signature


def _query_key(query: SemanticQuery) -> str:
    """An exact key of a request (every field), for the per-case caches."""
    return query.model_dump_json()


# ---- a whole run -----------------------------------------------------------------------------


def rule_digests() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in rule_files()}


def write_run(
    runner: Runner,
    cases: Iterable[BenchCase],
    out: Path,
    metadata: dict[str, Any],
    progress: Callable[[], None] | None = None,
    partition: tuple[int, int] | None = None,
    jobs: int = 1,
    ray: tuple[Any, str | None] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate ``cases`` lazily, writing ``out``'s files as results come; return the summary.
    ``options`` are the run's identification (release candidate, commit...) recorded in
    metadata.json under their published keys.

    With ``jobs`` > 1, worker processes (forked after the rules, policy and engine are loaded,
    so each loads nothing again) evaluate the cases in chunks; results are written in case
    order, so the files are byte-identical whatever ``jobs`` is. With ``ray`` (a
    :class:`~policystrata.distributed.RunnerSpec` and a cluster address, None for a local
    runtime) ``jobs`` Ray actors evaluate them instead (0: one per CPU of the cluster)."""
    out.mkdir(parents=True, exist_ok=True)
    wdir = out / "witnesses"
    for sub in (wdir, out / ARTIFACT_DIR):
        if sub.exists():
            shutil.rmtree(sub)
    wdir.mkdir()
    meta = {
        "package_version": __version__,
        "domain": runner.domain.name,
        "rules_digest": runner.checker.rules_digest,
        "rule_files": rule_digests(),
        "operators": sorted(OPERATORS),
        "evidence_level": "real_db" if runner.checker.has_database else "static",
        "minimize": runner.minimize,
        "partition": f"{partition[0]}/{partition[1]}" if partition else None,
        **metadata,
    }
    meta = {**meta, **published.metadata_keys(runner.domain, meta, options)}
    meta.setdefault("trace_count", None)  # set when the run ends
    (out / "metadata.json").write_text(_dump(meta), encoding="utf-8")
    acc = Accumulator()
    with gctune.tuned(managed=True):  # the cyclic GC: collected between cases (restored after)
        selected = (c for c in cases if partition is None or c.index % partition[1] == partition[0])
        if ray is not None:  # (RunnerSpec, cluster address or None for a local runtime)
            from policystrata.distributed import ray_map

            outcomes: Iterator[Outcome] = (
                o for outs in ray_map(ray[0], _chunks(selected, CHUNK), ray[1], jobs) for o in outs
            )
        elif jobs > 1:
            outcomes = _parallel(runner, selected, jobs)
        else:
            outcomes = (_outcome(runner, case) for case in selected)
        written: set[str] = set()  # artifact files (shared by many cases: written once)
        with (out / "traces.jsonl").open("w", encoding="utf-8") as traces:
            for outcome in outcomes:
                with profile.stage("io"):
                    _write_outcome(out, traces, outcome, written)
                acc.add(outcome.record, outcome.key)
                gctune.between_units()
                if progress is not None:
                    progress()
    summary = {
        "suite": meta.get("suite"),
        "domain": runner.domain.name,
        **acc.summary(),
        **published.summary_keys({}, acc),
    }
    (out / "summary.json").write_text(_dump(summary), encoding="utf-8")
    meta["trace_count"] = acc.cases
    # what the run really had: a database is set up only when a case first needs one
    meta["evidence_level"] = "real_db" if runner.checker.has_database else "static"
    (out / "metadata.json").write_text(_dump(meta), encoding="utf-8")
    return summary


@dataclass
class Outcome:
    """One case's results as written: the trace record, its witness files' text, its key."""

    record: dict[str, Any]
    key: bytes
    witnesses: str | None
    minimized: str | None
    artifacts: dict[str, str] = field(default_factory=dict)  # path -> text (artifacts/)


def _outcome(runner: Runner, case: BenchCase) -> Outcome:
    """Evaluate one case and serialize what the run writes for it."""
    ev = runner.evaluate(case)
    rec = ev.record
    with profile.stage("io"):
        wtext = mtext = None
        if ev.witnesses:
            wtext = _dump(published.witness_document(runner.domain, rec, ev.witnesses))
        if ev.minimized:
            mtext = _dump(published.witness_document(runner.domain, rec, ev.minimized))
            rec["minimized"]["witness"] = rec["witness"].replace(".json", ".min.json")
        blobs = artifact_blobs(ev.run, ev.reference)
    key = hashlib.sha256("\x1f".join(case.key()).encode()).digest()[:16]
    return Outcome(rec, key, wtext, mtext, blobs)


def _write_outcome(out: Path, traces: Any, outcome: Outcome, written: set[str]) -> None:
    rec = outcome.record
    for rel, text in outcome.artifacts.items():
        if rel not in written:
            written.add(rel)
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if outcome.witnesses is not None:
        (out / rec["witness"]).write_text(outcome.witnesses, encoding="utf-8")
    if outcome.minimized is not None:
        (out / rec["minimized"]["witness"]).write_text(outcome.minimized, encoding="utf-8")
    traces.write(_line(rec))
    traces.flush()


# ---- worker processes ------------------------------------------------------------------------

CHUNK = 4  # cases per task: a worker's share of scheduling overhead stays small
_WORKER_RUNNER: Runner | None = None


def _work(chunk: list[BenchCase]) -> list[Outcome]:
    assert _WORKER_RUNNER is not None
    out = []
    for case in chunk:
        out.append(_outcome(_WORKER_RUNNER, case))
        gctune.between_units()  # the worker's own collections (forked with the collector off)
    return out


def _chunks(cases: Iterable[BenchCase], size: int) -> Iterator[list[BenchCase]]:
    chunk: list[BenchCase] = []
    for case in cases:
        chunk.append(case)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parallel(runner: Runner, cases: Iterable[BenchCase], jobs: int) -> Iterator[Outcome]:
    """Outcomes in case order from ``jobs`` forked workers (see :mod:`policystrata.parallel`)."""
    global _WORKER_RUNNER
    from policystrata.parallel import ordered_map

    _WORKER_RUNNER = runner  # inherited by the forked workers: nothing is loaded again
    try:
        for outs in ordered_map(_work, _chunks(cases, CHUNK), jobs):
            yield from outs
    finally:
        _WORKER_RUNNER = None
