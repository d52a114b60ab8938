"""Task suites (``suites/*.yaml`` and the published ``tasks/*.yaml``) with ``matrix`` expansion.

Every key of the published format (COMPAT.md §3) is accepted with its published default:

- top level: ``suite`` (ignored: a suite is named after its file), ``policy_version`` ("v7"),
  ``surface_versions`` ({}), ``tasks``, ``matrix``, ``suite_metadata``; other top-level keys
  are ignored with a warning (the published loader is lenient there);
- a task: ``id``, ``principal``, ``request``, ``mutation`` (a fault operator id or ``none``, the
  clean control), ``semantic_query``, ``surface_versions``, ``expected_*``, and ``domain`` /
  ``policy_version`` (recorded; the run's domain and policy are what is checked);
- a matrix entry: ``mutation`` (required), ``count`` (1..10000, default 1), ``principal``
  (default ``acme_analyst``), ``request`` (``{index}`` becomes the task's number),
  ``semantic_query``, ``surface_versions``, ``variants`` (task number -> the keys of
  ``semantic_query`` that change for it) and ``expected_*`` (default: the fault catalogue's,
  applied by :mod:`policystrata.bench.suites`); other keys are ignored with a warning;
- ``semantic_query`` as a mapping: ``metric`` (required), ``dimensions`` ([]), ``filters`` ({}),
  ``time_range`` (``last_month``), ``grain`` (``month``), ``limit`` (100); other keys are
  ignored with a warning. As IR text **(new)** it means exactly what it says (no defaults);
- ``suite_metadata``: ``provenance`` (hand_authored), ``evidence_level``
  (deterministic_fixture), ``detector_frozen`` (false), ``detector_freeze_id`` (null),
  ``authored_after_detector_freeze`` (false), ``notes`` ([]), and our ``description``.

A matrix entry expands to ``count`` tasks with ids ``<mutation>_01 .. <mutation>_NN`` (two
digits at least); the literal ``{index}`` in the request becomes the task's number (1, 2, ...).
Explicit tasks come first, then the matrix tasks in file order.

>>> s = Suite.model_validate({"suite": "seeded", "matrix": [{"mutation": "gross_net_metric_drift",
...     "count": 2, "principal": "acme_analyst", "request": "variant {index}",
...     "semantic_query": "net_revenue by region during last_month limit 100"}]})
>>> for t in s.all_tasks():
...     print(t.id, "|", t.request, "|", t.semantic_query.to_text())
gross_net_metric_drift_01 | variant 1 | net_revenue by region during last_month limit 100
gross_net_metric_drift_02 | variant 2 | net_revenue by region during last_month limit 100
>>> m = MatrixEntry.model_validate({"mutation": "none", "count": 2,
...     "semantic_query": {"metric": "ticket_count"}, "variants": {2: {"limit": 5}}})
>>> for t in m.expand():
...     print(t.semantic_query.to_text())
ticket_count during last_month grain month limit 100
ticket_count during last_month grain month limit 5
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from policystrata.errors import InputError, InputErrors, did_you_mean
from policystrata.ir.query import QUERY_KEYS, SemanticQuery
from policystrata.layers import Layer
from policystrata.model.policy import Strict
from policystrata.model.yamlsrc import YamlDoc, load_yaml_file, validate

#: The published defaults of a semantic query written as a mapping.
QUERY_DEFAULTS: dict[str, Any] = {"time_range": "last_month", "grain": "month", "limit": 100}
TOP_KEYS = ("suite", "policy_version", "surface_versions", "suite_metadata", "tasks", "matrix")
MATRIX_KEYS = (
    "mutation",
    "count",
    "principal",
    "request",
    "semantic_query",
    "surface_versions",
    "variants",
    "expected_witness_class",
    "expected_localized_surface",
    "expected_containment_layer",
)

WitnessClass = str  # validated against WITNESS_CLASSES
WITNESS_CLASSES = (
    "clean",
    "over_permissive",
    "over_restrictive",
    "lowering_violation",
    "semantic_drift",
    "unsafe_release",
)


def _query(value: Any) -> Any:
    if value is None or isinstance(value, SemanticQuery):
        return value
    if isinstance(value, dict):  # the published mapping form: its defaults, extra keys dropped
        value = {**QUERY_DEFAULTS, **{k: v for k, v in value.items() if k in QUERY_KEYS}}
    try:
        return SemanticQuery.from_obj(value)
    except InputError as exc:
        where = f"column {exc.column}: " if exc.column else ""
        raise ValueError(f"invalid IR text: {where}{exc.message}") from None


def _versions(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
            for k, v in value.items()
        }
    return value


def _as_str(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class SuiteMetadata(Strict):
    """Provenance labels of a suite (published keys and defaults; ``description`` is ours)."""

    provenance: str = "hand_authored"
    evidence_level: str = "deterministic_fixture"
    detector_frozen: bool = False
    detector_freeze_id: str | None = None
    authored_after_detector_freeze: bool = False
    notes: list[str] = Field(default_factory=list)
    description: str | None = None


class _TaskFields(Strict):
    principal: str
    request: str = ""
    mutation: str = "none"
    semantic_query: SemanticQuery | None = None
    surface_versions: dict[Layer, str] = Field(default_factory=dict)
    expected_witness_class: str | None = None
    expected_localized_surface: Layer | None = None
    expected_containment_layer: Layer | None = None

    @field_validator("semantic_query", mode="before")
    @classmethod
    def _parse_query(cls, v: Any) -> Any:
        return _query(v)

    @field_validator("surface_versions", mode="before")
    @classmethod
    def _versions_as_str(cls, v: Any) -> Any:
        return _versions(v)

    @field_validator("expected_witness_class")
    @classmethod
    def _known_class(cls, v: str | None) -> str | None:
        if v is not None and v not in WITNESS_CLASSES:
            raise ValueError(
                f"unknown witness class '{v}' (expected one of {', '.join(WITNESS_CLASSES)})"
            )
        return v

    @field_validator("mutation", mode="before")
    @classmethod
    def _none_mutation(cls, v: Any) -> Any:
        return "none" if v is None else v


class Task(_TaskFields):
    id: str
    domain: str | None = None  # published: injected from --domain; recorded only
    policy_version: str | None = None  # published: injected from the suite; recorded only

    @field_validator("policy_version", "domain", mode="before")
    @classmethod
    def _names_as_str(cls, v: Any) -> Any:
        return _as_str(v)


class MatrixEntry(_TaskFields):
    """A row of the matrix (unknown keys are ignored, as the published loader does; the
    suite loader warns about them)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    principal: str = "acme_analyst"
    count: int = Field(default=1, ge=1, le=10000)
    variants: dict[int, dict[str, Any]] = Field(default_factory=dict)

    def expand(self) -> list[Task]:
        fields = self.model_dump(exclude={"count", "variants"})
        fields["semantic_query"] = self.semantic_query
        out = []
        for i in range(1, self.count + 1):
            task = dict(fields)
            task["id"] = f"{self.mutation}_{i:02d}"
            task["request"] = self.request.replace("{index}", str(i))
            variant = self.variants.get(i)
            if variant and self.semantic_query is not None:
                base = self.semantic_query.to_dict()
                task["semantic_query"] = {**base, **variant}
            out.append(Task.model_validate(task))
        return out


class Suite(Strict):
    """A suite file (unknown top-level keys are ignored, with a warning from the loader)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    suite: str = ""
    policy_version: str = "v7"
    surface_versions: dict[Layer, str] = Field(default_factory=dict)
    suite_metadata: SuiteMetadata = Field(default_factory=SuiteMetadata)
    tasks: list[Task] = Field(default_factory=list)
    matrix: list[MatrixEntry] = Field(default_factory=list)
    _warnings: list[InputError] = PrivateAttr(default_factory=list)

    @field_validator("surface_versions", mode="before")
    @classmethod
    def _versions_as_str(cls, v: Any) -> Any:
        return _versions(v)

    @field_validator("policy_version", mode="before")
    @classmethod
    def _version_as_str(cls, v: Any) -> Any:
        return _as_str(v)

    @property
    def warnings(self) -> list[InputError]:
        """Keys the published format ignores, found in this file (file:line each)."""
        return self._warnings

    def all_tasks(self) -> list[Task]:
        """Explicit tasks followed by the expanded matrix, in file order (a matrix id that an
        earlier task already has continues the numbering, see :func:`load_suite`)."""
        out = list(self.tasks)
        seen = {t.id for t in out}
        for entry in self.matrix:
            for task in entry.expand():
                if task.id in seen:
                    task = task.model_copy(update={"id": _next_free(entry.mutation, seen)})
                seen.add(task.id)
                out.append(task)
        return out


def _next_free(mutation: str, seen: set[str]) -> str:
    n = 1
    while f"{mutation}_{n:02d}" in seen:
        n += 1
    return f"{mutation}_{n:02d}"


def load_suite(path: Path | str, display: str | None = None) -> Suite:
    """Load one suite file; errors are :class:`InputErrors` with file:line (duplicate explicit
    task ids included). Keys the published format ignores are :attr:`Suite.warnings`; a suite
    is named after its file."""
    path = Path(path)
    doc = load_yaml_file(path, display)
    suite = validate(Suite, doc)
    # the published loader names a suite after its file (``--suite NAME`` reads NAME.yaml) and
    # ignores a ``suite:`` key; ours agree with their file names
    suite = suite.model_copy(update={"suite": path.stem})
    warnings = [*_ignored_keys(doc), *_check_ids(suite, doc)]
    suite._warnings.extend(sorted(warnings, key=lambda w: w.line or 0))
    return suite


def _ignored_keys(doc: YamlDoc) -> list[InputError]:
    """Warnings for keys the published loader drops: at the top level, in matrix entries and
    in mapping-form semantic queries."""
    data = doc.data if isinstance(doc.data, dict) else {}
    out: list[InputError] = []

    def unknown(path: tuple[str | int, ...], mapping: Any, allowed: tuple[str, ...]) -> None:
        if not isinstance(mapping, dict):
            return
        for key in mapping:
            if key not in allowed:
                out.append(
                    doc.error(
                        (*path, str(key)),
                        f"unknown key, ignored{did_you_mean(str(key), allowed)}",
                    )
                )

    unknown((), data, TOP_KEYS)
    for section in ("tasks", "matrix"):
        items = data.get(section)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if section == "matrix":
                unknown((section, i), item, MATRIX_KEYS)
            if isinstance(item, dict):
                unknown((section, i, "semantic_query"), item.get("semantic_query"), QUERY_KEYS)
                variants = item.get("variants")
                for k, v in (variants or {}).items() if isinstance(variants, dict) else []:
                    unknown((section, i, "variants", k), v, QUERY_KEYS)
    return out


def _check_ids(suite: Suite, doc: YamlDoc) -> list[InputError]:
    """Explicit task ids must be unique (an error); a matrix id an earlier task already has is
    renumbered (a warning: the published tool would have written both under one id)."""
    seen: set[str] = set()
    errors: list[InputError] = []
    warnings: list[InputError] = []
    for i, task in enumerate(suite.tasks):
        if task.id in seen:
            errors.append(doc.error(("tasks", i, "id"), f"duplicate task id '{task.id}'"))
        seen.add(task.id)
    for i, entry in enumerate(suite.matrix):
        for task in entry.expand():
            if task.id in seen:
                warnings.append(
                    doc.error(
                        ("matrix", i, "mutation"),
                        f"expanded task id '{task.id}' is already used: this entry's tasks "
                        "continue the numbering",
                    )
                )
                break
            seen.add(task.id)
    if errors:
        raise InputErrors(errors)
    return warnings


def suite_files(domain_dir: Path) -> list[Path]:
    """``suites/*.yaml`` and the published ``tasks/*.yaml`` (and ``*.yml``) of a domain; a name
    in both is read from ``suites/``."""
    files: dict[str, Path] = {}
    for sub in ("suites", "tasks"):
        found = sorted([*(domain_dir / sub).glob("*.yaml"), *(domain_dir / sub).glob("*.yml")])
        for p in found:
            files.setdefault(p.stem, p)
    return [files[k] for k in sorted(files)]


def load_suites(domain_dir: Path | str) -> list[Suite]:
    """All suites of a domain directory."""
    return [load_suite(p, f"{p.parent.name}/{p.name}") for p in suite_files(Path(domain_dir))]
