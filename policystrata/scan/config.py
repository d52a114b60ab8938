"""The scan config (``policystrata.yaml``): the published format, loaded unchanged.

Unknown keys are errors with ``file:line`` (through :mod:`policystrata.model.yamlsrc`), and every
path must stay inside the config file's directory: ``domain:`` is a built-in domain name or a
directory inside it, no path may be absolute, climb out with ``..``, hold a NUL byte or go
through a symlink that points out of it, and no symlink inside the domain's directory may
point out of it either.

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

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from policystrata.errors import InputError, InputErrors, did_you_mean
from policystrata.model.yamlsrc import YamlDoc, load_yaml_file, validate
from policystrata.paths import domains_dir


def _builtin_names() -> list[str]:
    return sorted(d.name for d in domains_dir().iterdir() if d.is_dir())


def _is_builtin(name: str) -> bool:
    """A bare name (no path separator) of a directory among the built-in domains."""
    return "/" not in name and "\\" not in name and name in _builtin_names()


SEVERITIES = ("low", "medium", "high", "critical")
CONFIDENCES = ("low", "medium", "high")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileSet(_Strict):
    """A list of input files and whether a missing file is an error."""

    files: list[str] = Field(default_factory=list)
    required: bool = True


class Tenancy(_Strict):
    """Tenant columns and the canonical tenant predicate(s) the app is expected to emit."""

    tenant_columns: list[str] = Field(default_factory=list)
    canonical_predicates: list[str] = Field(default_factory=list)


class RlsCheck(_Strict):
    """A query run as the app role under one tenant: which rows (and tenants) it may see."""

    id: str
    sql: str
    tenant_id: str
    expected_rows: int | None = None
    expected_tenant_ids: list[str] | None = None
    tenant_column: str | None = None


class StateAssertion(_Strict):
    """A query whose result under one tenant must be as stated (row count, empty, no value)."""

    id: str
    sql: str
    tenant_id: str
    expected_rows: int | None = None
    expect_empty: bool | None = None
    forbidden_values: list[Any] | None = None


class DatabaseConfig(_Strict):
    """Real-database evidence: a throwaway or given PostgreSQL server."""

    mode: Literal["postgres"] = "postgres"
    required: bool = False
    admin_url: str | None = None
    app_url: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    seed: str | None = None
    execute_imported_sql: bool = True
    rls_checks: list[RlsCheck] = Field(default_factory=list)
    state_assertions: list[StateAssertion] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Gate(_Strict):
    """When the scan fails (exit 1).

    ``fail_on_high_confidence`` (published, default true): findings at or above the thresholds
    fail the gate; ``false`` makes every finding a warning. **(new)** ``fail_on_severity``
    (default ``low``) and ``fail_on_confidence`` (default ``medium``): findings below either
    threshold are warnings. **(new)** ``max_findings`` (default 0): how many gating findings
    are tolerated.
    """

    fail_on_high_confidence: bool = True
    fail_on_severity: Literal["low", "medium", "high", "critical"] = "low"
    fail_on_confidence: Literal["low", "medium", "high"] = "medium"
    max_findings: int = 0


class ScanConfigModel(_Strict):
    """The published scan config."""

    version: int = 1
    domain: str | None = None
    domain_path: str | None = None
    sql_traces: FileSet = Field(default_factory=FileSet)
    dbt: FileSet | None = None
    tenancy: Tenancy | None = None
    database: DatabaseConfig | None = None
    sarif: bool = True
    gate: Gate = Field(default_factory=Gate)
    rules: list[str] = Field(default_factory=list, description="(new) extra rule files")


class ScanConfig:
    """A validated scan config with its paths resolved (and confined) to its directory."""

    def __init__(self, model: ScanConfigModel, path: Path, doc: YamlDoc) -> None:
        self.model = model
        self.path = path
        self.root = path.parent.resolve()
        self.doc = doc

    @property
    def name(self) -> str:
        return self.path.name

    def line(self, *keys: str | int) -> int | None:
        return self.doc.line(keys)

    def resolve(self, rel: str, *keys: str | int) -> Path:
        """``rel`` relative to the config directory; a path outside it (absolute, ``..``, or
        through a symlink pointing out) is an error."""
        if "\x00" in rel:
            raise self.doc.error(keys, "the path contains a NUL byte")
        target = (self.root / rel).resolve()
        if not target.is_relative_to(self.root):
            raise self.doc.error(keys, f"path {rel!r} leaves the config directory")
        return target

    def confine_tree(self, directory: Path, *keys: str | int) -> None:
        """No symlink under ``directory`` (a domain) may point out of the config directory:
        the domain's files are read as the domain's, so they must be what the config holds."""
        for parent, dirs, files in os.walk(directory, followlinks=False):
            for name in [*dirs, *files]:
                entry = Path(parent) / name
                if entry.is_symlink() and not entry.resolve().is_relative_to(self.root):
                    shown = entry.relative_to(directory).as_posix()
                    raise self.doc.error(
                        keys, f"{shown} in the domain is a symlink out of the config directory"
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
                continue
            out.append(p)
        return out

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
