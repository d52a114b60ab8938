"""The scan config (``policystrata.yaml``): the published format, loaded unchanged.

Every key of the published format (COMPAT.md §4) is accepted with its published default;
unknown keys are errors with ``file:line`` (through :mod:`policystrata.model.yamlsrc`).

Paths are relative to the config file's directory and confined (no NUL byte, no symlink that
points out, no symlink inside a domain's directory that points out either):

- ``domain:`` (a built-in name, or our own path form), ``sql_traces.files``, ``dbt.files`` and
  ``rules`` stay inside the config's directory (the published line forbids ``..`` there too);
- the keys where the published line allows ``..`` and absolute paths — ``domain_path``,
  ``database.schema``/``seed``, ``output`` and the ``strata doctor`` inputs — stay inside the
  *workspace*: the git work tree holding the config (so ``schema: ../../src/app/schema.sql`` of a
  published config works), or the config's directory when it is in no work tree. Nothing a scan
  reads or writes lies outside it (``/etc/passwd`` never reaches a report).

Our own extra keys stay:
``rules``, ``gate.fail_on_severity`` / ``fail_on_confidence`` / ``max_findings``, and a bare
list as ``state_assertions[].forbidden_values`` (any column).

- ``sql_traces``, ``dbt`` and the inputs ``strata doctor`` reads (``policy_docs``,
  ``prompt_manifests``, ``source_maps``, ``runtime_manifests``, ``runtime_events``):
  ``{files: [], required: false}``; a listed file that does not exist is an error only when
  ``required``. What makes an input required *for the gate* is ``gate.required_inputs``.
- ``tenancy``: ``canonical_predicates`` (``:principal.tenant_id`` / ``:principal.tenant_ids``
  placeholders), ``tenant_columns`` (``table.column`` or a bare column name) and
  ``table_tenant_columns`` (``{table: [columns]}``) become tenancy facts
  (:mod:`policystrata.scan.tenancy`).
- ``output``: where the outputs go (default ``<config dir>/scan-out``; ``--out`` wins);
  ``sarif`` (default false) adds scan.sarif.
- ``fuzz``: ``{enabled: true, seed: 1729, max_cases_per_trace: 8 (0..50)}``.
- ``gate``: ``fail_on_high_confidence`` (true), ``required_inputs`` (a subset of dbt,
  sql_traces, database, state_assertions).
- ``database``: ``mode`` postgres, ``required``, ``start_docker`` / ``compose_file`` /
  ``compose_service`` / ``startup_timeout_seconds`` (accepted; there is no Docker here: the
  project starts its own throwaway server), ``admin_url``, ``app_url``, ``schema`` (alias
  ``schema_path``), ``seed``, ``execute_imported_sql``, ``sarif``, ``rls_checks[]`` and
  ``state_assertions[]`` (each needs at least one condition).

>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "traces.jsonl").write_text("")
>>> _ = (d / "policystrata.yaml").write_text(
...     "version: 1\\ndomain: support_saas\\nsql_traces: {files: [traces.jsonl]}\\n")
>>> cfg = load_scan_config(d / "policystrata.yaml")
>>> [p.name for p in cfg.trace_paths()]
['traces.jsonl']
>>> _ = (d / "bad.yaml").write_text("version: 1\\ndomain: support_saas\\nsql_trace: {}\\n")
>>> load_scan_config(d / "bad.yaml")
Traceback (most recent call last):
...
policystrata.errors.InputErrors: bad.yaml:3: sql_trace: unknown key (did you mean 'sql_traces'?)
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policystrata.errors import InputError, InputErrors, did_you_mean
from policystrata.model.yamlsrc import YamlDoc, load_yaml_file, validate
from policystrata.paths import domains_dir


@functools.lru_cache(maxsize=1)
def _builtin_names() -> tuple[str, ...]:
    """The built-in domains (directories shipped with the package: read once a process; a
    scan asks for each finding's re-check command)."""
    return tuple(sorted(d.name for d in domains_dir().iterdir() if d.is_dir()))


def _is_builtin(name: str) -> bool:
    """A bare name (no path separator) of a directory among the built-in domains."""
    return "/" not in name and "\\" not in name and name in _builtin_names()


SEVERITIES = ("low", "medium", "high", "critical")
CONFIDENCES = ("low", "medium", "high")
#: Inputs ``gate.required_inputs`` may name.
REQUIRED_INPUTS = ("dbt", "sql_traces", "database", "state_assertions")
#: Inputs only ``strata doctor`` reads (accepted, listed in the scan summary, not scanned).
DOCTOR_INPUTS = (
    "policy_docs",
    "prompt_manifests",
    "source_maps",
    "runtime_manifests",
    "runtime_events",
)
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
REGRESSION_CASES = (
    "fail_to_pass",
    "pass_to_pass",
    "contain_to_contain",
    "deny_to_deny",
    "allow_to_allow",
    "unclassified",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _str_or_none(v: Any) -> Any:
    """Tenant ids are strings (``'4821'``); a YAML number is read as its text."""
    return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


def _safe_id(v: str) -> str:
    if not SAFE_ID.fullmatch(v):
        raise ValueError(
            f"id {v!r} must start with a letter or digit and hold only letters, digits, "
            "'_', '.', '-' (at most 128)"
        )
    return v


class FileSet(_Strict):
    """A list of input files and whether a missing file is an error (published default:
    false, the file is skipped with a note)."""

    files: list[str] = Field(default_factory=list)
    required: bool = False


class Tenancy(_Strict):
    """Tenant columns and the canonical predicate(s) the app is expected to emit."""

    tenant_columns: list[str] = Field(default_factory=list)
    canonical_predicates: list[str] = Field(default_factory=list)
    table_tenant_columns: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("table_tenant_columns", mode="before")
    @classmethod
    def _one_column(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: [c] if isinstance(c, str) else c for k, c in v.items()}
        return v


class RlsCheck(_Strict):
    """A query run as the app role under one tenant: which rows (and tenants) it may see."""

    id: str
    sql: str
    tenant_id: str | None = None
    expected_rows: int | None = Field(default=None, ge=0)
    expected_tenant_ids: list[str] = Field(default_factory=list)
    tenant_column: str = "tenant_id"
    required: bool = False

    @field_validator("id")
    @classmethod
    def _id_safe(cls, v: str) -> str:
        return _safe_id(v)

    @field_validator("tenant_id", mode="before")
    @classmethod
    def _tenant_str(cls, v: Any) -> Any:
        return _str_or_none(v)

    @field_validator("expected_tenant_ids", mode="before")
    @classmethod
    def _tenants_str(cls, v: Any) -> Any:
        return [_str_or_none(x) for x in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _has_expectation(self) -> RlsCheck:
        if self.expected_rows is None and not self.expected_tenant_ids:
            raise ValueError("give expected_rows or expected_tenant_ids (what the check expects)")
        return self


Scalar = str | int | float | bool | None


class StateAssertion(_Strict):
    """A query whose result under one tenant must be as stated: row count, empty, columns
    present / absent, values allowed / forbidden per column."""

    id: str
    sql: str
    tenant_id: str | None = None
    expected_rows: int | None = Field(default=None, ge=0)
    expect_empty: bool = False
    require_columns: list[str] = Field(default_factory=list)
    forbidden_columns: list[str] = Field(default_factory=list)
    allowed_values: dict[str, list[Scalar]] = Field(default_factory=dict)
    forbidden_values: dict[str, list[Scalar]] | list[Scalar] = Field(default_factory=dict)
    required: bool = False
    regression_case: Literal[
        "fail_to_pass",
        "pass_to_pass",
        "contain_to_contain",
        "deny_to_deny",
        "allow_to_allow",
        "unclassified",
    ] = "pass_to_pass"

    @field_validator("id")
    @classmethod
    def _id_safe(cls, v: str) -> str:
        return _safe_id(v)

    @field_validator("tenant_id", mode="before")
    @classmethod
    def _tenant_str(cls, v: Any) -> Any:
        return _str_or_none(v)

    @model_validator(mode="after")
    def _has_condition(self) -> StateAssertion:
        if not (
            self.expected_rows is not None
            or self.expect_empty
            or self.require_columns
            or self.forbidden_columns
            or self.allowed_values
            or self.forbidden_values
        ):
            raise ValueError(
                "give at least one condition: expected_rows, expect_empty, require_columns, "
                "forbidden_columns, allowed_values or forbidden_values"
            )
        return self


class DatabaseConfig(_Strict):
    """Real-database evidence: a throwaway or given PostgreSQL server."""

    mode: Literal["postgres"] = "postgres"
    required: bool = False
    start_docker: bool = False
    compose_file: str | None = None
    compose_service: str = "postgres"
    startup_timeout_seconds: float = Field(default=30.0, gt=0)
    admin_url: str | None = None
    app_url: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    schema_path: str | None = None  # the published alias of schema
    seed: str | None = None
    execute_imported_sql: bool = True
    sarif: bool = False
    rls_checks: list[RlsCheck] = Field(default_factory=list)
    state_assertions: list[StateAssertion] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _schema_alias(self) -> DatabaseConfig:
        if self.schema_path is not None:
            if self.schema_ is not None and self.schema_ != self.schema_path:
                raise ValueError("give schema or schema_path (the same key), not both")
            object.__setattr__(self, "schema_", self.schema_path)
        return self


class Fuzz(_Strict):
    """The published fuzz stage's settings (accepted and validated; the stage is not run yet:
    the scan says so)."""

    enabled: bool = True
    seed: int = 1729
    max_cases_per_trace: int = Field(default=8, ge=0, le=50)


class Gate(_Strict):
    """When the scan fails (exit 1).

    ``fail_on_high_confidence`` (published, default true): findings at or above the thresholds
    fail the gate; ``false`` makes every finding a warning. The default thresholds are the
    published gate's: a finding fails it when it is high or critical **and** of high
    confidence (over-restrictive findings are low by their rules' ``@severity``, so they warn,
    as in the published line). **(new)** ``fail_on_severity`` (default ``high``) and
    ``fail_on_confidence`` (default ``high``) move the thresholds; ``max_findings`` (default 0)
    is how many gating findings are tolerated.
    """

    fail_on_high_confidence: bool = True
    required_inputs: list[Literal["dbt", "sql_traces", "database", "state_assertions"]] = Field(
        default_factory=list
    )
    fail_on_severity: Literal["low", "medium", "high", "critical"] = "high"
    fail_on_confidence: Literal["low", "medium", "high"] = "high"
    max_findings: int = 0


class ScanConfigModel(_Strict):
    """The published scan config."""

    version: int = 1
    domain: str = "support_saas"
    domain_path: str | None = None
    output: str | None = None
    sql_traces: FileSet = Field(default_factory=FileSet)
    dbt: FileSet | None = None
    policy_docs: FileSet | None = None
    prompt_manifests: FileSet | None = None
    source_maps: FileSet | None = None
    runtime_manifests: FileSet | None = None
    runtime_events: FileSet | None = None
    tenancy: Tenancy | None = None
    database: DatabaseConfig | None = None
    sarif: bool = False
    fuzz: Fuzz = Field(default_factory=Fuzz)
    gate: Gate = Field(default_factory=Gate)
    rules: list[str] = Field(default_factory=list, description="(new) extra rule files")


class ScanConfig:
    """A validated scan config with its paths resolved (and confined) to its directory."""

    def __init__(self, model: ScanConfigModel, path: Path, doc: YamlDoc) -> None:
        self.model = model
        self.path = path
        self.root = path.parent.resolve()
        self.workspace = _workspace(self.root)
        self.doc = doc
        self.missing: list[str] = []  # listed input files that do not exist (not required)

    @property
    def name(self) -> str:
        return self.path.name

    def line(self, *keys: str | int) -> int | None:
        return self.doc.line(keys)

    def resolve(self, rel: str, *keys: str | int) -> Path:
        """``rel`` relative to the config directory, confined (see the module docstring): to
        the workspace for the keys the published line lets point elsewhere, else to the config
        directory. A path outside (absolute, ``..``, a symlink pointing out) is an error."""
        if "\x00" in rel:
            raise self.doc.error(keys, "the path contains a NUL byte")
        root, what = self._confinement(keys)
        target = (self.root / rel).resolve()
        if not target.is_relative_to(root):
            raise self.doc.error(keys, f"path {rel!r} leaves the {what}")
        return target

    def _confinement(self, keys: tuple[str | int, ...]) -> tuple[Path, str]:
        wide = keys and (keys[0] in WORKSPACE_KEYS or tuple(keys[:2]) in WORKSPACE_KEYS)
        if wide and self.workspace != self.root:
            return self.workspace, f"workspace ({self.workspace.name}, the git work tree)"
        return self.root, "config directory"

    def confine_tree(self, directory: Path, *keys: str | int) -> None:
        """No symlink under ``directory`` (a domain) may point out of where ``directory`` must
        stay: the domain's files are read as the domain's, so they must be what the repository
        holds."""
        root, what = self._confinement(keys)
        for parent, dirs, files in os.walk(directory, followlinks=False):
            for name in [*dirs, *files]:
                entry = Path(parent) / name
                if entry.is_symlink() and not entry.resolve().is_relative_to(root):
                    shown = entry.relative_to(directory).as_posix()
                    raise self.doc.error(
                        keys, f"{shown} in the domain is a symlink out of the {what}"
                    )

    def is_builtin_domain(self) -> bool:
        """``domain:`` names a built-in domain (a bare name; built-ins win over a directory)."""
        name = self.model.domain
        return bool(name) and _is_builtin(str(name))

    def relative(self, path: Path) -> str:
        """A path as written in reports: relative to the config directory, POSIX style."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return path.name

    def domain_ref(self) -> str | Path:
        """A built-in domain's name, or the domain directory inside the config directory."""
        m = self.model
        if m.domain_path:
            path = self.resolve(m.domain_path, "domain_path")
            self.confine_tree(path, "domain_path")
            return path
        if m.domain:
            if self.is_builtin_domain():
                return m.domain
            path = self.resolve(m.domain, "domain")
            self.confine_tree(path, "domain")
            return path
        raise self.doc.error((), "give domain (a built-in name) or domain_path")

    def domain_display(self) -> str:
        """How the re-check command names the domain (relative, so it works in CI)."""
        m = self.model
        if m.domain_path:
            return f"--domain-path {m.domain_path}"
        if m.domain and not self.is_builtin_domain():
            return f"--domain-path {m.domain}"
        return f"--domain {m.domain}"

    def _files(self, section: str, fileset: FileSet | None) -> list[Path]:
        if fileset is None:
            return []
        out = []
        for i, rel in enumerate(fileset.files):
            p = self.resolve(rel, section, "files", i)
            if not p.is_file():
                if fileset.required:
                    raise self.doc.error((section, "files", i), f"file not found: {rel}")
                where = (section, "files", i)
                self.missing.append(
                    str(self.doc.error(where, f"{rel} does not exist (not required: skipped)"))
                )
                continue
            out.append(p)
        return out

    def output_dir(self) -> Path:
        """``output`` (relative to the config's directory, inside the workspace), default
        ``<config dir>/scan-out``."""
        rel = self.model.output
        return self.resolve(rel, "output") if rel else self.root / "scan-out"

    def present_inputs(self) -> dict[str, bool]:
        """Which gate inputs the config provides (the published meaning of "present"):
        ``dbt`` / ``sql_traces`` have files, ``database`` has rls_checks, state_assertions,
        a schema or a seed, ``state_assertions`` has at least one."""
        m = self.model
        db = m.database
        return {
            "dbt": bool(m.dbt and m.dbt.files),
            "sql_traces": bool(m.sql_traces.files),
            "database": bool(
                db and (db.rls_checks or db.state_assertions or db.schema_ or db.seed)
            ),
            "state_assertions": bool(db and db.state_assertions),
        }

    def trace_paths(self) -> list[Path]:
        return self._files("sql_traces", self.model.sql_traces)

    def dbt_paths(self) -> list[Path]:
        return self._files("dbt", self.model.dbt)

    def rule_paths(self) -> list[Path]:
        out = []
        for i, rel in enumerate(self.model.rules):
            p = self.resolve(rel, "rules", i)
            if p.is_dir():
                out.extend(sorted(p.glob("*.dl")))
            elif p.is_file():
                out.append(p)
            else:
                raise self.doc.error(("rules", i), f"file not found: {rel}")
        return out

    def db_file(self, key: str) -> Path | None:
        db = self.model.database
        if db is None:
            return None
        rel = db.schema_ if key == "schema" else db.seed
        if rel is None:
            return None
        p = self.resolve(rel, "database", key)
        if not p.is_file():
            raise self.doc.error(("database", key), f"file not found: {rel}")
        return p


#: Keys whose paths may leave the config directory but not the workspace (the published line
#: allows ``..`` and absolute paths for them).
WORKSPACE_KEYS: frozenset[str | tuple[str | int, ...]] = frozenset(
    {
        "domain_path",
        "output",
        ("database", "schema"),
        ("database", "seed"),
        *DOCTOR_INPUTS,
    }
)


def _workspace(config_dir: Path) -> Path:
    """The git work tree holding ``config_dir`` (its top, where ``.git`` is), else
    ``config_dir`` itself."""
    for d in (config_dir, *config_dir.parents):
        if (d / ".git").exists():
            return d
    return config_dir


def load_scan_config(path: Path) -> ScanConfig:
    """Load, validate and path-check a scan config; problems raise InputError(s) with lines."""
    if not path.is_file():
        raise InputError(
            "scan config not found (give --config PATH, or scaffold one with "
            "`strata init-scan --out DIR`)",
            file=str(path),
        )
    doc = load_yaml_file(path, path.name)
    model = validate(ScanConfigModel, doc)
    cfg = ScanConfig(model, path, doc)
    errors: list[InputError] = []
    checks: list[tuple[str | None, tuple[str | int, ...]]] = [
        (model.domain_path, ("domain_path",)),
        *((f, ("sql_traces", "files", i)) for i, f in enumerate(model.sql_traces.files)),
        *((f, ("dbt", "files", i)) for i, f in enumerate(model.dbt.files if model.dbt else [])),
        *((f, ("rules", i)) for i, f in enumerate(model.rules)),
    ]
    if model.database is not None:
        checks += [(model.database.schema_, ("database", "schema"))]
        checks += [(model.database.seed, ("database", "seed"))]
    checks += [(model.output, ("output",))]
    for rel, keys in checks:
        if rel is None:
            continue
        try:
            cfg.resolve(rel, *keys)
        except InputError as exc:
            errors.append(exc)
    if model.version != 1:
        errors.append(doc.error(("version",), f"unsupported scan config version {model.version}"))
    if not model.domain and not model.domain_path:
        errors.append(doc.error((), "give domain (a built-in name) or domain_path"))
    elif model.domain and not model.domain_path and not cfg.is_builtin_domain():
        try:
            path = cfg.resolve(model.domain, "domain")
            if not path.is_dir():
                known = ", ".join(_builtin_names())
                raise doc.error(
                    ("domain",),
                    f"unknown domain '{model.domain}'{did_you_mean(model.domain, _builtin_names())}"
                    f" (built-in: {known}; or a directory inside the config's directory)",
                )
            cfg.confine_tree(path, "domain")
        except InputError as exc:
            errors.append(exc)
    if model.domain_path:
        try:
            domain_dir = cfg.resolve(model.domain_path, "domain_path")
        except InputError:
            pass  # reported above
        else:
            try:
                cfg.confine_tree(domain_dir, "domain_path")
            except InputError as exc:
                errors.append(exc)
    if errors:
        raise InputErrors(errors)
    return cfg
