"""Where a run's cases come from: a suite YAML file (FORMATS.md) or a generated stream.

``--suite NAME`` resolves to ``generated`` / ``heldout_v1`` (generated streams),
``clean_controls`` (the domain's ``suites/clean_controls.yaml`` topped up with generated
fault-free controls up to ``--count``), or ``suites/NAME.yaml`` (``tasks/NAME.yaml`` in older
trees). ``--suite-file PATH`` reads any suite file. Suite-level ``surface_versions`` apply to every
task (a task's own entries win); a compiler version with a style suffix (``v7-cte``) selects the
reference compiler's SQL style. Versions only drive the stack; they never reach the detector.

>>> from policystrata.model import load_domain
>>> src = resolve_suite(load_domain("support_saas"), "generated", count=5, seed=3)
>>> src.name, src.total, len(list(src.cases()))
('generated', 5, 5)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policystrata.bench.cases import BenchCase, style_from_versions
from policystrata.bench.generate import DEFAULT_SEEDS, GenStats, generate
from policystrata.errors import InputError, InputErrors, did_you_mean
from policystrata.model import Domain, load_suite
from policystrata.model.suite import Suite
from policystrata.model.yamlsrc import load_yaml_file
from policystrata.stack.faults import OPERATORS, OTHER_DOMAIN_OPERATORS

GENERATED = ("generated", "heldout_v1")
DEFAULT_COUNT = 200


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
    names = set(GENERATED) | {"clean_controls"}
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
    """Every task (matrix rows expanded) with its line; an operator id that is neither ours nor
    one of FORMATS.md's other-domain ids is an error at its line (a typo would otherwise only
    surface as a stillborn case)."""
    doc = load_yaml_file(path, label)
    entries: list[tuple[Any, int | None]] = [
        (t, doc.line(("tasks", i, "id"))) for i, t in enumerate(suite.tasks)
    ]
    for j, entry in enumerate(suite.matrix):
        for t in entry.expand():
            entries.append((t, doc.line(("matrix", j, "mutation"))))
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
    }
    if suite.suite_metadata is not None:
        # the suite's own labels (provenance, the evidence level it was authored for); the run's
        # evidence level is what the run really had (metadata.json "evidence_level")
        meta["suite_metadata"] = {
            k: v for k, v in suite.suite_metadata.model_dump().items() if v is not None
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
    if name in GENERATED:
        n = count if count is not None else DEFAULT_COUNT
        stats = GenStats()
        s = DEFAULT_SEEDS[name] if seed is None else seed
        return SuiteSource(
            name,
            lambda: generate(domain, name, n, s, stats=stats),
            n,
            {"provenance": "generated", "generator_stream": name},
            stats,
        )
    found = suite_path(domain, name)
    if name == "clean_controls":
        path = found
        file_src = _file_source(path, suite_label(path, domain)) if path is not None else None
        n_file = (file_src.total or 0) if file_src is not None else 0
        extra = max(0, (count or 0) - n_file)
        stats = GenStats()
        s = DEFAULT_SEEDS[name] if seed is None else seed
        meta: dict[str, Any] = {"provenance": "hand_authored+generated"}
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
    return SuiteSource(
        suite.suite,
        lambda: _file_cases(path, suite, label, entries),
        len(entries),
        _file_meta(path, suite),
    )
