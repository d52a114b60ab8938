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
from policystrata.errors import InputError
from policystrata.model import Domain, load_suite
from policystrata.model.suite import Suite
from policystrata.model.yamlsrc import load_yaml_file

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


def _file_cases(path: Path, suite: Suite, start: int = 0) -> Iterator[BenchCase]:
    doc = load_yaml_file(path, path.name)
    base_versions = dict(suite.surface_versions)
    index = start
    entries: list[tuple[Any, int | None]] = [
        (t, doc.line(("tasks", i, "id"))) for i, t in enumerate(suite.tasks)
    ]
    for j, entry in enumerate(suite.matrix):
        for t in entry.expand():
            entries.append((t, doc.line(("matrix", j, "mutation"))))
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
            source=path.name,
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
        suite = load_suite(suite_file, suite_file.name)
        sf: Path = suite_file
        total = len(suite.all_tasks())
        return SuiteSource(
            suite.suite, lambda: _file_cases(sf, suite), total, _file_meta(sf, suite)
        )
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
        file_suite = load_suite(path, path.name) if path is not None else None
        n_file = len(file_suite.all_tasks()) if file_suite is not None else 0
        extra = max(0, (count or 0) - n_file)
        stats = GenStats()
        s = DEFAULT_SEEDS[name] if seed is None else seed
        meta: dict[str, Any] = {"provenance": "hand_authored+generated"}
        if file_suite is not None and path is not None:
            meta.update(_file_meta(path, file_suite))

        def controls() -> Iterator[BenchCase]:
            if file_suite is not None and path is not None:
                yield from _file_cases(path, file_suite)
            if extra:
                yield from generate(
                    domain, "clean_controls", extra, s, stats=stats, start_index=n_file
                )

        return SuiteSource(name, controls, n_file + extra, meta, stats)
    if found is None:
        known = ", ".join(available_suites(domain))
        raise InputError(f"unknown suite '{name}' for domain {domain.name} (available: {known})")
    suite = load_suite(found, found.name)
    p = found
    return SuiteSource(
        suite.suite, lambda: _file_cases(p, suite), len(suite.all_tasks()), _file_meta(p, suite)
    )
