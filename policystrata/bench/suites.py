"""Where a run's cases come from: a suite YAML file (FORMATS.md) or a generated stream.

``--suite NAME`` resolves to a reserved generated suite (:data:`RESERVED`, the published names
with their default count and seed: ``generated`` 500/1729, ``generated_alt_seed`` and
``held_out`` 50/8675309, ``heldout_v1`` 500/260626, ``clean_controls`` 80/260627,
``adversarial_clean_controls`` 1000/260628), or ``suites/NAME.yaml`` / the published
``tasks/NAME.yaml``. A domain's own ``clean_controls.yaml`` is run first and topped up with
generated fault-free controls up to the count. ``--suite-file PATH`` reads any suite file.
Suite-level ``surface_versions`` apply to every task (a task's own entries win); a compiler
version with a style suffix (``v7-cte``) selects the reference compiler's SQL style. Versions only
drive the stack; they never reach the detector.

A matrix task without ``expected_*`` labels gets the fault catalogue's (:data:`CATALOGUE`, the
published MutationSpec labels; our own operators' for ids the published line does not have).

>>> from policystrata.model import load_domain
>>> src = resolve_suite(load_domain("support_saas"), "generated", count=5, seed=3)
>>> src.name, src.total, len(list(src.cases()))
('generated', 5, 5)
>>> RESERVED["held_out"], CATALOGUE["compiler_drops_tenant_predicate"]
(('generated', 50, 8675309), ('compiler', 'lowering_violation', 'database'))
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policystrata.bench.cases import BenchCase, style_from_versions
from policystrata.bench.generate import GenStats, generate
from policystrata.errors import InputError, InputErrors, did_you_mean
from policystrata.model import Domain, load_suite
from policystrata.model.suite import Suite
from policystrata.model.yamlsrc import load_yaml_file
from policystrata.stack.faults import OPERATORS, OTHER_DOMAIN_OPERATORS

#: Reserved generated suite names: (generator stream, default count, default seed).
RESERVED: dict[str, tuple[str, int, int]] = {
    "generated": ("generated", 500, 1729),
    "generated_alt_seed": ("generated", 50, 8675309),
    "held_out": ("generated", 50, 8675309),
    "heldout_v1": ("heldout_v1", 500, 260626),
    "clean_controls": ("clean_controls", 80, 260627),
    "adversarial_clean_controls": ("clean_controls", 1000, 260628),
}
GENERATED = tuple(n for n, (stream, _c, _s) in RESERVED.items() if stream != "clean_controls")
CONTROLS = tuple(n for n, (stream, _c, _s) in RESERVED.items() if stream == "clean_controls")

#: The published fault catalogue's labels (COMPAT.md §3): operator id -> (affected surface,
#: witness class, containment layer). The defaults of a matrix entry's ``expected_*``.
CATALOGUE: dict[str, tuple[str, str, str | None]] = {
    "none": ("release", "clean", None),
    "stale_metric_alias_manifest": ("manifest", "over_permissive", None),
    "grammar_permits_forbidden_dimension": ("grammar", "over_permissive", None),
    "validator_omits_sensitive_column": ("validator", "over_permissive", None),
    "compiler_drops_tenant_predicate": ("compiler", "lowering_violation", "database"),
    "compiler_uses_old_tenant_key": ("compiler", "lowering_violation", "database"),
    "compiler_swaps_tenant_account_id": ("compiler", "lowering_violation", "database"),
    "gross_net_metric_drift": ("compiler", "semantic_drift", None),
    "fanout_join_drift": ("compiler", "semantic_drift", None),
    "compiler_removes_distinct": ("compiler", "semantic_drift", None),
    "compiler_inner_join_drops_rows": ("compiler", "semantic_drift", None),
    "fiscal_calendar_mismatch": ("compiler", "semantic_drift", None),
    "materialized_view_lineage_drop": ("compiler", "semantic_drift", None),
    "timezone_bucket_drift": ("compiler", "semantic_drift", None),
    "uniq_to_count_drift": ("compiler", "semantic_drift", None),
    "cost_estimate_ignores_expansion": ("compiler", "over_permissive", None),
    "db_rls_old_ownership_field": ("database", "over_permissive", None),
    "app_deny_missing_db_policy": ("database", "over_permissive", None),
    "clickhouse_row_policy_missing_project_filter": ("database", "over_permissive", None),
    "clickhouse_row_policy_readonly_assumption_violation": ("database", "over_permissive", None),
    "distributed_table_policy_gap": ("database", "over_permissive", None),
    "aggregate_small_cohort_release": ("release", "unsafe_release", None),
    "sample_clause_release_drift": ("release", "unsafe_release", None),
}


def catalogue_labels(mutation: str) -> tuple[str | None, str | None, str | None]:
    """(surface, class, containment) a matrix task defaults to: the published catalogue's,
    else our operator's."""
    if mutation in CATALOGUE:
        return CATALOGUE[mutation]
    op = OPERATORS.get(mutation)
    if op is not None:
        return op.surface, op.witness_class, op.containment
    return None, None, None


@dataclass
class SuiteSource:
    name: str
    cases: Callable[[], Iterator[BenchCase]]
    total: int | None
    meta: dict[str, Any] = field(default_factory=dict)
    stats: GenStats | None = None


def suite_path(domain: Domain, name: str) -> Path | None:
    for sub in ("suites", "tasks"):
        for ext in (".yaml", ".yml"):
            p = domain.path / sub / f"{name}{ext}"
            if p.is_file():
                return p
    return None


def available_suites(domain: Domain) -> list[str]:
    names = set(RESERVED)
    for sub in ("suites", "tasks"):
        for p in (domain.path / sub).glob("*.y*ml"):
            names.add(p.stem)
    return sorted(names)


def suite_label(path: Path, domain: Domain | None = None) -> str:
    """How a suite file is named in errors and provenance: relative to its domain
    (``suites/seeded.yaml``) when it is one of the domain's, else the path as given."""
    if domain is not None:
        try:
            return path.resolve().relative_to(domain.path.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


def _task_entries(path: Path, suite: Suite, label: str) -> list[tuple[Any, int | None]]:
    """Every task (matrix rows expanded, without labels given the catalogue's) with its line; an
    operator id that is neither ours nor one of FORMATS.md's other-domain ids is an error at its
    line (a typo would otherwise only surface as a stillborn case)."""
    doc = load_yaml_file(path, label)
    lines: list[int | None] = [doc.line(("tasks", i, "id")) for i in range(len(suite.tasks))]
    for j, entry in enumerate(suite.matrix):
        lines += [doc.line(("matrix", j, "mutation"))] * entry.count
    tasks = suite.all_tasks()
    for k in range(len(suite.tasks), len(tasks)):
        t = tasks[k]
        surface, wclass, containment = catalogue_labels(t.mutation)
        tasks[k] = t.model_copy(
            update={
                "expected_witness_class": t.expected_witness_class or wclass,
                "expected_localized_surface": t.expected_localized_surface or surface,
                "expected_containment_layer": t.expected_containment_layer
                if "expected_containment_layer" in t.model_fields_set
                else containment,
            }
        )
    entries: list[tuple[Any, int | None]] = list(zip(tasks, lines, strict=True))
    known = {*OPERATORS, *OTHER_DOMAIN_OPERATORS, "none"}
    errors = []
    for i, task in enumerate(suite.tasks):
        if task.mutation and task.mutation not in known:
            errors.append(
                _unknown_operator(task.mutation, label, doc.line(("tasks", i, "mutation")))
            )
    for j, entry in enumerate(suite.matrix):
        if entry.mutation and entry.mutation not in known:
            errors.append(
                _unknown_operator(entry.mutation, label, doc.line(("matrix", j, "mutation")))
            )
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)
    return entries


def _unknown_operator(op: str, label: str, line: int | None) -> InputError:
    return InputError(
        f"unknown fault operator '{op}'{did_you_mean(op, [*OPERATORS, *OTHER_DOMAIN_OPERATORS])}",
        file=label,
        line=line,
        key="mutation",
    )


def _file_cases(
    path: Path, suite: Suite, label: str, entries: list[tuple[Any, int | None]], start: int = 0
) -> Iterator[BenchCase]:
    base_versions = dict(suite.surface_versions)
    index = start
    for task, line in entries:
        versions = {**base_versions, **task.surface_versions}
        yield BenchCase(
            index=index,
            task_id=task.id,
            request=task.request,
            policy_version=task.policy_version or suite.policy_version,
            principal=task.principal,
            query=task.semantic_query,
            mutation=task.mutation or "none",
            style=style_from_versions(versions),
            expected_class=task.expected_witness_class,
            expected_surface=task.expected_localized_surface,
            expected_containment=task.expected_containment_layer,
            surface_versions=versions,
            source=label,
            line=line,
            invalid=None if task.semantic_query is not None else "the task has no semantic_query",
        )
        index += 1


def _file_meta(path: Path, suite: Suite) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "suite_file": path.name,
        "suite_file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "tasks": len(suite.all_tasks()),
        "policy_version": suite.policy_version,
        "default_surface_versions": dict(suite.surface_versions),
        # the suite's own labels (provenance, the evidence level it was authored for); the run's
        # evidence level is what the run really had (metadata.json "evidence_level")
        "suite_metadata": {
            k: v for k, v in suite.suite_metadata.model_dump().items() if v is not None
        },
    }
    return meta


def resolve_suite(
    domain: Domain,
    name: str | None,
    suite_file: Path | None = None,
    count: int | None = None,
    seed: int | None = None,
) -> SuiteSource:
    """The cases of a suite, lazily."""
    if suite_file is not None:
        return _file_source(suite_file, suite_label(suite_file, domain))
    name = name or "seeded"
    found = suite_path(domain, name)
    if name in GENERATED and found is None:
        stream, default_count, default_seed = RESERVED[name]
        n = count if count is not None else default_count
        stats = GenStats()
        s = default_seed if seed is None else seed
        return SuiteSource(
            name,
            lambda: generate(domain, stream, n, s, stats=stats),
            n,
            {"provenance": "generated", "generator_stream": stream, "seed": s, "count": n},
            stats,
        )
    if name in CONTROLS:
        _stream, default_count, default_seed = RESERVED[name]
        path = found
        file_src = _file_source(path, suite_label(path, domain)) if path is not None else None
        n_file = (file_src.total or 0) if file_src is not None else 0
        extra = max(0, (count if count is not None else default_count) - n_file)
        stats = GenStats()
        s = default_seed if seed is None else seed
        meta: dict[str, Any] = {"provenance": "hand_authored+generated", "seed": s}
        if file_src is not None:
            meta.update(file_src.meta)

        def controls() -> Iterator[BenchCase]:
            if file_src is not None:
                yield from file_src.cases()
            if extra:
                yield from generate(
                    domain, "clean_controls", extra, s, stats=stats, start_index=n_file
                )

        return SuiteSource(name, controls, n_file + extra, meta, stats)
    if found is None:
        known = ", ".join(available_suites(domain))
        raise InputError(f"unknown suite '{name}' for domain {domain.name} (available: {known})")
    return _file_source(found, suite_label(found, domain))


def _file_source(path: Path, label: str) -> SuiteSource:
    """A suite file's cases (checked at load: YAML, format, operator ids)."""
    suite = load_suite(path, label)
    entries = _task_entries(path, suite, label)
    meta = _file_meta(path, suite)
    meta["suite_warnings"] = [str(w) for w in suite.warnings]
    return SuiteSource(
        suite.suite,
        lambda: _file_cases(path, suite, label, entries),
        len(entries),
        meta,
    )
