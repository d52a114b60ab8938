"""Task suites (``suites/*.yaml``; older trees use ``tasks/*.yaml``) with ``matrix`` expansion.

A matrix entry expands to ``count`` tasks with ids ``<mutation>_01 .. <mutation>_NN``; the
literal ``{index}`` in the request becomes the task's number (1, 2, ...).

>>> s = Suite.model_validate({"suite": "seeded", "matrix": [{"mutation": "gross_net_metric_drift",
...     "count": 2, "principal": "acme_analyst", "request": "variant {index}",
...     "semantic_query": "net_revenue by region during last_month limit 100"}]})
>>> for t in s.all_tasks():
...     print(t.id, "|", t.request, "|", t.semantic_query.to_text())
gross_net_metric_drift_01 | variant 1 | net_revenue by region during last_month limit 100
gross_net_metric_drift_02 | variant 2 | net_revenue by region during last_month limit 100
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from policystrata.errors import InputError, InputErrors
from policystrata.ir.query import SemanticQuery
from policystrata.model.policy import Strict
from policystrata.model.surfaces import SurfaceName
from policystrata.model.yamlsrc import YamlDoc, load_yaml_file, validate

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


class SuiteMetadata(Strict):
    provenance: str | None = None
    evidence_level: str | None = None
    detector_frozen: bool | None = None
    description: str | None = None


class _TaskFields(Strict):
    principal: str
    request: str = ""
    mutation: str = "none"
    semantic_query: SemanticQuery | None = None
    surface_versions: dict[SurfaceName, str] = Field(default_factory=dict)
    expected_witness_class: str | None = None
    expected_localized_surface: SurfaceName | None = None
    expected_containment_layer: SurfaceName | None = None

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


class MatrixEntry(_TaskFields):
    count: int = Field(ge=1)

    def expand(self) -> list[Task]:
        width = max(2, len(str(self.count)))
        fields = self.model_dump(exclude={"count"})
        fields["semantic_query"] = self.semantic_query
        out = []
        for i in range(1, self.count + 1):
            task = dict(fields)
            task["id"] = f"{self.mutation}_{i:0{width}d}"
            task["request"] = self.request.replace("{index}", str(i))
            out.append(Task.model_validate(task))
        return out


class Suite(Strict):
    suite: str
    surface_versions: dict[SurfaceName, str] = Field(default_factory=dict)
    suite_metadata: SuiteMetadata | None = None
    tasks: list[Task] = Field(default_factory=list)
    matrix: list[MatrixEntry] = Field(default_factory=list)

    @field_validator("surface_versions", mode="before")
    @classmethod
    def _versions_as_str(cls, v: Any) -> Any:
        return _versions(v)

    def all_tasks(self) -> list[Task]:
        """Explicit tasks followed by the expanded matrix, in file order."""
        out = list(self.tasks)
        for entry in self.matrix:
            out.extend(entry.expand())
        return out


def load_suite(path: Path | str, display: str | None = None) -> Suite:
    """Load one suite file; errors are :class:`InputErrors` with file:line (duplicate task ids
    included)."""
    path = Path(path)
    doc = load_yaml_file(path, display)
    suite = validate(Suite, doc)
    _check_ids(suite, doc)
    return suite


def _check_ids(suite: Suite, doc: YamlDoc) -> None:
    seen: dict[str, str] = {}
    errors: list[InputError] = []
    for i, task in enumerate(suite.tasks):
        if task.id in seen:
            errors.append(doc.error(("tasks", i, "id"), f"duplicate task id '{task.id}'"))
        seen[task.id] = "tasks"
    for i, entry in enumerate(suite.matrix):
        for task in entry.expand():
            if task.id in seen:
                errors.append(
                    doc.error(
                        ("matrix", i, "mutation"), f"expanded task id '{task.id}' is already used"
                    )
                )
                break
            seen[task.id] = "matrix"
    if errors:
        raise InputErrors(errors)


def suite_files(domain_dir: Path) -> list[Path]:
    """``suites/*.yaml`` (and ``*.yml``) of a domain, else the older ``tasks/*.yaml``."""
    for sub in ("suites", "tasks"):
        files = sorted([*(domain_dir / sub).glob("*.yaml"), *(domain_dir / sub).glob("*.yml")])
        if files:
            return files
    return []


def load_suites(domain_dir: Path | str) -> list[Suite]:
    """All suites of a domain directory."""
    return [load_suite(p, f"{p.parent.name}/{p.name}") for p in suite_files(Path(domain_dir))]
