"""Ablations: the checker with one part taken away, re-run over the same cases as a run
(``strata ablations RUN...``).

The run's cases are rebuilt deterministically from its suite (metadata.json: suite, count,
seed; the task ids must match the run's, in order), each goes through the reference stack with
its fault, and the ablated checker judges the artifacts, exactly as ``strata run`` does. Each
ablation is compared with the full checker re-run the same way: kill rate, localization
accuracy, false positives, the operators whose cases it no longer kills, and the median size of
a witness (the facts of its case: after minimization for the full checker, before it for
``without_minimization``).

Ablations (:func:`ablations`), the published names where they apply:

- ``without_release_policy``, ``without_lineage``: the checks (rules deriving a witness
  predicate) of ``release.dl``, of ``drift.dl`` (SQL-vs-IR lineage drift);
- ``without_independent_oracle``: the check of ``canonical.dl`` (the judged SQL vs the
  canonical SQL's semantics) and the real-row comparison of ``evidence.dl``;
- ``without_database_containment``: the ``contained`` rules of ``localize.dl`` (a later layer
  that blocked the effect) and the checks of ``database.dl``;
- ``without_transition_obligations``: surfaces.yaml's ``transition_obligations`` emptied;
- ``without_minimization``: witnesses as found, not delta-debugged (witness size);
- ``without_<layer>_responsibilities``: one layer's contract emptied in surfaces.yaml;
- ``without_rules:<file>``: the checks of one rule file (every file that has some).

``without_policy_version`` does not apply: surface and policy versions drive the reference
stack only and never reach the detector (DESIGN.md), so there is nothing to take away.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policystrata.bench.cases import BenchCase
from policystrata.bench.runner import Runner
from policystrata.bench.suites import resolve_suite
from policystrata.check import WITNESS_PREDICATES, Checker, contract_names, load_rules
from policystrata.engine.ast import Program, Rule
from policystrata.errors import InputError
from policystrata.layers import LAYERS
from policystrata.model import Domain, load_domain


@dataclass(frozen=True)
class Ablation:
    name: str
    description: str
    drop_rule: Callable[[Rule], bool] | None = None  # rules taken out of the program
    prepare: Callable[[Domain], None] | None = None  # a change to the loaded domain


def _checks_of(*files: str, preds: tuple[str, ...] = WITNESS_PREDICATES) -> Callable[[Rule], bool]:
    names = {f"rules/{f}" for f in files}
    return lambda r: r.file in names and r.head.pred in preds and bool(r.body)


def _no_obligations(domain: Domain) -> None:
    domain.surfaces = domain.surfaces.model_copy(update={"transition_obligations": []})


def _no_responsibilities(layer: str) -> Callable[[Domain], None]:
    def prepare(domain: Domain) -> None:
        contracts = dict(domain.surfaces.contracts)
        contract = contracts.get(layer)  # type: ignore[call-overload]
        if contract is not None:
            contracts[layer] = contract.model_copy(update={"responsibilities": []})  # type: ignore[index]
            domain.surfaces = domain.surfaces.model_copy(update={"contracts": contracts})

    return prepare


def ablations(program: Program) -> list[Ablation]:
    """Every ablation, the published names first."""
    out = [
        Ablation("without_release_policy", "release.dl checks dropped", _checks_of("release.dl")),
        Ablation(
            "without_lineage", "drift.dl (lineage drift) checks dropped", _checks_of("drift.dl")
        ),
        Ablation(
            "without_independent_oracle",
            "canonical.dl and evidence.dl checks dropped",
            _checks_of("canonical.dl", "evidence.dl"),
        ),
        Ablation(
            "without_database_containment",
            "localize.dl containment and database.dl checks dropped",
            lambda r: (
                _checks_of("localize.dl", preds=("contained",))(r) or _checks_of("database.dl")(r)
            ),
        ),
        Ablation(
            "without_transition_obligations",
            "surfaces.yaml transition_obligations emptied",
            prepare=_no_obligations,
        ),
        Ablation("without_minimization", "witnesses as found, not minimized"),
    ]
    for layer in LAYERS:
        out.append(
            Ablation(
                f"without_{layer}_responsibilities",
                f"the {layer} contract's responsibilities emptied",
                prepare=_no_responsibilities(layer),
            )
        )
    files = sorted({r.file for r in program.rules if _is_check(r)})
    for f in files:
        name = Path(f).name
        out.append(Ablation(f"without_rules:{name}", f"{name} checks dropped", _checks_of(name)))
    return out


def _is_check(rule: Rule) -> bool:
    return rule.head.pred in WITNESS_PREDICATES and bool(rule.body)


def run_cases(run_dir: Path, domain: Domain, suite_file: Path | None = None) -> list[BenchCase]:
    """The run's cases, rebuilt from its suite (the task ids checked against the run's)."""
    meta = json.loads((run_dir / "metadata.json").read_text(encoding="utf-8"))
    suite = None if suite_file is not None else meta.get("suite")
    count = meta.get("count") if meta.get("count") is not None else meta.get("generated_count")
    try:
        source = resolve_suite(domain, suite, suite_file, count, meta.get("seed"))
    except InputError as exc:
        raise InputError(
            f"cannot rebuild the run's cases: {exc.message} (give --suite-file)",
            file=str(run_dir),
        ) from None
    cases = list(source.cases())
    tasks = []
    with (run_dir / "traces.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                tasks.append(json.loads(line).get("task"))
    if meta.get("partition"):
        k, n = (int(x) for x in str(meta["partition"]).split("/"))
        cases = [c for c in cases if c.index % n == k]
    if [c.task_id for c in cases] != tasks:
        raise InputError(
            "the suite no longer gives the run's cases (its tasks differ): run it again",
            file=str(run_dir),
        )
    return cases


def evaluate(checker: Checker, cases: Iterable[BenchCase], minimize: bool) -> dict[str, Any]:
    """Kill rate, localization accuracy, false positives and witness sizes of one checker."""
    runner = Runner(checker, minimize=minimize)
    killed = survived = fp = controls = loc_ok = loc_n = 0
    ops: dict[str, dict[str, int]] = {}
    sizes: list[int] = []
    minimized: list[int] = []
    for case in cases:
        ev = runner.evaluate(case)
        rec = ev.record
        status = rec.get("status")
        if status in ("killed", "survived"):
            op = ops.setdefault(case.mutation, {"killed": 0, "mutants": 0})
            op["mutants"] += 1
            if status == "killed":
                killed += 1
                op["killed"] += 1
                if case.expected_surface:
                    loc_n += 1
                    loc_ok += int(rec.get("localized") == case.expected_surface)
            else:
                survived += 1
        elif status in ("clean", "false_positive"):
            controls += 1
            fp += int(status == "false_positive")
        if ev.witnesses:  # a witness's size: the facts of its case, then of the minimized one
            if "minimized" in rec:
                sizes.append(int(rec["minimized"]["facts_before"]))
                minimized.append(int(rec["minimized"]["facts_after"]))
            else:
                sizes.append(checker.last_artifact_fact_count)
    mutants = killed + survived
    return {
        "killed": killed,
        "survived": survived,
        "kill_rate": round(killed / mutants, 4) if mutants else None,
        "localization_accuracy": round(loc_ok / loc_n, 4) if loc_n else None,
        "false_positives": fp,
        "controls": controls,
        "median_witness_facts": (
            statistics.median(minimized or sizes) if (minimized or sizes) else None
        ),
        "median_unminimized_facts": statistics.median(sizes) if sizes else None,
        "per_operator": {k: ops[k] for k in sorted(ops)},
    }


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 4)


def ablation_report(
    run_dir: Path,
    domain_ref: str | Path,
    only: Iterable[str] = (),
    suite_file: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The full checker and each ablation (``only``: these names) over one run's cases."""
    program = load_rules()
    responsibilities, obligations = contract_names(program)

    def domain() -> Domain:
        return load_domain(
            domain_ref, known_responsibilities=responsibilities, known_obligations=obligations
        )

    base_domain = domain()
    cases = run_cases(run_dir, base_domain, suite_file)
    wanted = set(only)
    todo = [a for a in ablations(program) if not wanted or a.name in wanted]
    unknown = wanted - {a.name for a in ablations(program)}
    if unknown:
        known = ", ".join(a.name for a in ablations(program))
        raise InputError(f"unknown ablation {', '.join(sorted(unknown))} (known: {known})")
    if progress:
        progress("full")
    full = evaluate(Checker(base_domain, program=program), cases, minimize=True)
    out: dict[str, Any] = {}
    for ab in todo:
        if progress:
            progress(ab.name)
        if ab.name == "without_minimization":  # the full checker's witnesses before minimizing
            result = dict(full, median_witness_facts=full["median_unminimized_facts"])
        else:
            prog = program
            if ab.drop_rule is not None:
                kept = [r for r in program.rules if not ab.drop_rule(r)]
                prog = dataclasses.replace(
                    program,
                    rules=kept,
                    compiled_order=dict(program.compiled_order),
                    proof_order={},
                )
            dom = domain()
            if ab.prepare is not None:
                ab.prepare(dom)
            result = evaluate(Checker(dom, program=prog), cases, minimize=False)
            result["median_witness_facts"] = None  # not minimized: sizes are not comparable
            result["dropped_rules"] = len(program.rules) - len(prog.rules)
        lost = sorted(
            op
            for op, v in full["per_operator"].items()
            if result["per_operator"].get(op, {}).get("killed", 0) < v["killed"]
        )
        out[ab.name] = {
            "description": ab.description,
            **{k: v for k, v in result.items() if k != "per_operator"},
            "kill_rate_change": _delta(result["kill_rate"], full["kill_rate"]),
            "localization_change": _delta(
                result["localization_accuracy"], full["localization_accuracy"]
            ),
            "witness_facts_change": _delta(
                result["median_witness_facts"], full["median_witness_facts"]
            ),
            "operators_no_longer_killed": lost,
        }
    return {
        "domain": base_domain.name,
        "cases": len(cases),
        "full": {k: v for k, v in full.items() if k != "per_operator"},
        "ablations": out,
    }
