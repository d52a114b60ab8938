"""``strata doctor``: what a scan config wires up and what is missing, without scanning.

Each check (:data:`CHECKS`, in report order) reads one part of the config and returns
:class:`Item` s: a name, a status, a one-line detail, whether the item is *required* and the
config line that configures it. Statuses:

- ``ok``: present and readable with the reader the scan uses;
- ``missing``: configured (or needed) but not there (a listed file that does not exist, no
  server binaries, a required gate input the config does not give);
- ``partial``: some of it is there (a trace file with unreadable records, an input with some of
  its files missing, a tenant column no known table has);
- ``invalid``: there but unreadable (a domain that does not load, a dbt file dbt rejects, a DSN
  that does not answer);
- ``not_configured``: the config does not ask for it.

Nothing is scanned and no server is started: files are read with the scan's own readers
(:func:`policystrata.traces.read_traces`, the dbt reader, the domain loader), load errors are
reported as items naming file and line, never raised. Paths are resolved by
:class:`policystrata.scan.config.ScanConfig` (the scan's path rules). The report is
deterministic: same config, same files, same machine -> the same bytes.

*Required* means: the scan cannot do its job without it (the domain's policy and surfaces, the
rule files), or the config says so (``required: true`` of an input, ``gate.required_inputs``,
``database.required``). ``strata doctor --strict`` exits 1 when a required item is missing,
partial or invalid.

>>> import pathlib, tempfile
>>> from policystrata.scan.config import load_scan_config
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "t.jsonl").write_text(
...     '{"id": "a", "principal": "acme_analyst", "sql": "select 1"}\\n{')
>>> _ = (d / "policystrata.yaml").write_text(
...     "version: 1\\ndomain: support_saas\\nsql_traces: {files: [t.jsonl, gone.jsonl]}\\n"
...     "policy_docs: {files: [docs/policy.md], required: true}\\n")
>>> report = run_doctor(load_scan_config(d / "policystrata.yaml"), connect=False)
>>> for item in report.items:
...     if item.name.startswith(("sql_traces", "policy_docs")):
...         print(item.status, item.name, "|", item.detail)
partial sql_traces | 1 of 2 file(s) readable: 1 record(s), 1 unreadable, 0 skipped
partial sql_traces: t.jsonl | 1 record(s), 1 unreadable (t.jsonl:2), 0 skipped
missing sql_traces: gone.jsonl | gone.jsonl does not exist (not required: the scan skips it)
missing policy_docs | 0 of 1 file(s) present, 0 readable (read by `strata doctor` only)
missing policy_docs: docs/policy.md | docs/policy.md does not exist (required)
>>> [i.name for i in report.strict_failures()]
['policy_docs', 'policy_docs: docs/policy.md']
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from policystrata import __version__
from policystrata.errors import InputError, InputErrors, StrataError
from policystrata.scan.config import DOCTOR_INPUTS, FileSet, ScanConfig

Status = Literal["ok", "missing", "partial", "invalid", "not_configured"]
STATUSES: tuple[Status, ...] = ("ok", "missing", "partial", "invalid", "not_configured")
#: Statuses that make ``--strict`` fail when the item is required.
FAILING: tuple[Status, ...] = ("missing", "partial", "invalid")
#: How long a configured DSN may take to answer.
CONNECT_TIMEOUT_SECONDS = 3


@dataclass
class Item:
    """One thing the config wires up (or should): its status and a one-line detail.
    ``problems`` lists every error behind a non-ok status (``file:line: message``)."""

    name: str
    status: Status
    detail: str
    required: bool = False
    where: str | None = None
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "required": self.required,
            "detail": self.detail,
        }
        if self.where:
            out["where"] = self.where
        if self.problems:
            out["problems"] = self.problems
        return out


@dataclass
class DoctorReport:
    """Every item, in check order."""

    config: str
    items: list[Item] = field(default_factory=list)

    def strict_failures(self) -> list[Item]:
        """Required items that are missing, partial or invalid (``--strict`` exits 1)."""
        return [i for i in self.items if i.required and i.status in FAILING]

    def counts(self) -> dict[str, int]:
        c = Counter(i.status for i in self.items)
        return {s: c.get(s, 0) for s in STATUSES}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "tool": "policystrata",
            "version": __version__,
            "config": self.config,
            "counts": self.counts(),
            "strict_failures": [i.name for i in self.strict_failures()],
            "items": [i.to_json() for i in self.items],
        }


@dataclass
class Context:
    """What the checks share: the config, and the rules and domain once loaded (None when
    they do not load: the items say why)."""

    config: ScanConfig
    connect: bool = True
    program: Any = None
    domain: Any = None
    domain_dir: Path | None = None
    domain_errors: list[InputError] = field(default_factory=list)

    def where(self, *keys: str | int) -> str | None:
        line = self.config.line(*keys)
        return f"{self.config.name}:{line}" if line is not None else None


def _worst(statuses: Iterable[Status]) -> Status:
    """The status of a group: invalid > missing/partial (any) > ok."""
    seen = set(statuses)
    if "invalid" in seen:
        return "invalid"
    if seen & {"missing", "partial"}:
        return "missing" if seen == {"missing"} else "partial"
    return "ok" if seen else "not_configured"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _errors(exc: StrataError) -> list[InputError]:
    if isinstance(exc, InputErrors):
        return list(exc.errors)
    if isinstance(exc, InputError):
        return [exc]
    return [InputError(str(exc))]


# ------------------------------------------------------------------------------- the checks


def check_config(ctx: Context) -> list[Item]:
    """The config itself (it loaded, or doctor would have exited 2)."""
    m = ctx.config.model
    return [
        Item(
            "config",
            "ok",
            f"{ctx.config.name} loads (version {m.version})",
            required=True,
            where=f"{ctx.config.name}:1",
        )
    ]


def check_rules(ctx: Context) -> list[Item]:
    """The shipped rules and the config's extra ``rules`` files: parsed and statically checked
    as the scan loads them."""
    from policystrata.check import load_rules

    extra: list[Path] = []
    try:
        extra = ctx.config.rule_paths()
        ctx.program = load_rules(None, extra)
    except StrataError as exc:
        errors = _errors(exc)
        with_extra = f" with {len(extra)} extra rule file(s)" if extra else ""
        try:  # the domain is still checked against the shipped rules
            ctx.program = load_rules()
        except StrataError:  # pragma: no cover - the shipped rules always load
            ctx.program = None
        return [
            Item(
                "rules",
                "invalid",
                f"the rules do not load{with_extra}: {errors[0]}",
                required=True,
                where=ctx.where("rules"),
                problems=[str(e) for e in errors],
            )
        ]
    n = len(ctx.program.rules)
    detail = f"{n} rules load" + (
        f" (with {', '.join(ctx.config.relative(p) for p in extra)})" if extra else ""
    )
    return [Item("rules", "ok", detail, required=True, where=ctx.where("rules") if extra else None)]


DOMAIN_FILES = (
    ("policy", "policy.yaml"),
    ("surfaces", "surfaces.yaml"),
    ("schema", "schema.sql"),
    ("seed", "seed.sql"),
)


def check_domain(ctx: Context) -> list[Item]:
    """The domain (built-in or a directory) and its four files: present, and loading as the
    scan loads them (with the config's tenancy); every load error with its file and line."""
    from policystrata.contracts import contract_names
    from policystrata.model import load_domain
    from policystrata.paths import domains_dir
    from policystrata.scan.run import prepare_domain

    cfg, m = ctx.config, ctx.config.model
    key = "domain_path" if m.domain_path else "domain"
    where = ctx.where(key)
    try:
        ref = cfg.domain_ref()
    except StrataError as exc:
        return [Item("domain", "invalid", _first_line(exc), required=True, where=where)]
    builtin = isinstance(ref, str)
    ctx.domain_dir = domains_dir() / ref if isinstance(ref, str) else ref
    shown = f"{ref} (built-in)" if builtin else cfg.relative(ctx.domain_dir) + "/"
    try:
        known = contract_names(ctx.program) if ctx.program is not None else (None, None)
        domain = load_domain(ref, known_responsibilities=known[0], known_obligations=known[1])
        prepare_domain(cfg)(domain)
    except StrataError as exc:
        ctx.domain_errors = _errors(exc)
        head = Item(
            "domain",
            "invalid",
            f"{shown} does not load: {len(ctx.domain_errors)} error(s), first: "
            f"{ctx.domain_errors[0]}",
            required=True,
            where=where,
            problems=[str(e) for e in ctx.domain_errors],
        )
    else:
        ctx.domain = domain
        warnings = [str(w) for w in domain.warnings]
        p = domain.policy
        detail = (
            f"{shown} loads: {len(p.principals)} principal(s), {len(p.roles)} role(s), "
            f"{len(p.metrics)} metric(s), {len(p.dimensions)} dimension(s)"
        )
        if warnings:
            detail += f", {len(warnings)} warning(s)"
        head = Item("domain", "ok", detail, required=True, where=where, problems=warnings)
    return [head, *_domain_files(ctx, shown)]


def _domain_files(ctx: Context, shown: str) -> list[Item]:
    assert ctx.domain_dir is not None
    items = []
    db = ctx.config.model.database
    for kind, fname in DOMAIN_FILES:
        path = ctx.domain_dir / fname
        name = f"domain: {fname}"
        errors = [str(e) for e in ctx.domain_errors if (e.file or "").endswith(fname)]
        required = kind in ("policy", "surfaces")
        if not path.is_file():
            why = {
                "policy": "required: the domain cannot load without it",
                "surfaces": "required: the domain cannot load without it",
                "schema": "tables and columns come from policy.yaml; checks that need keys or "
                "RLS are reported as skipped (unknown without schema.sql)",
                "seed": "a database, when configured, starts with empty tables"
                if db is not None
                else "used only with a database",
            }[kind]
            items.append(Item(name, "missing", f"not in {shown}: {why}", required=required))
            continue
        if errors:
            items.append(
                Item(
                    name,
                    "invalid",
                    f"{len(errors)} error(s), first: {errors[0]}",
                    required=required,
                    problems=errors,
                )
            )
            continue
        items.append(Item(name, "ok", _file_detail(ctx, kind, path), required=required))
    return items


def _file_detail(ctx: Context, kind: str, path: Path) -> str:
    d = ctx.domain
    if d is None:
        return "present"
    if kind == "policy":
        return f"present, loads (version {d.policy.version})"
    if kind == "surfaces":
        return f"present, loads ({len(d.surfaces.contracts)} contract(s))"
    if kind == "schema":
        tables = d.schema.tables
        rls = len(d.schema.rls_enabled)
        return f"present, parses: {len(tables)} table(s), row level security on {rls}"
    return f"present, {_statements(path)}"


def _statements(path: Path) -> str:
    """How many statements a SQL file holds (split by the SQL tokenizer), or why not."""
    from policystrata.model.yamlsrc import read_text_file
    from policystrata.sql.adapter import SqlglotError, split_statements

    try:
        text = read_text_file(path, path.name)
        return f"{len(split_statements(text))} statement(s)"
    except InputError as exc:
        return f"unreadable: {exc}"
    except SqlglotError as exc:
        return f"does not tokenize: {_first_line(exc)}"


def check_traces(ctx: Context) -> list[Item]:
    """``sql_traces.files``: each file present, how many records the scan's reader reads, how
    many are unreadable (each a finding in the scan) or skipped (not queries)."""
    from policystrata.traces import Skipped, read_traces
    from policystrata.witness import RecordError

    cfg = ctx.config
    fs = cfg.model.sql_traces
    required = fs.required or "sql_traces" in cfg.model.gate.required_inputs
    where = ctx.where("sql_traces")
    if not fs.files:
        return [
            Item(
                "sql_traces",
                "not_configured",
                "no trace files listed (sql_traces.files): the scan has no records to judge",
                required=required,
                where=where,
            )
        ]
    items, totals, readable = [], Counter[str](), 0
    for i, rel in enumerate(fs.files):
        name, at = f"sql_traces: {rel}", ctx.where("sql_traces", "files", i)
        path = _resolve(ctx, rel, "sql_traces", "files", i)
        if isinstance(path, Item):
            items.append(_renamed(path, name, fs.required, at))
            continue
        if not path.is_file():
            items.append(_absent(name, rel, fs.required, at))
            continue
        counts: Counter[str] = Counter()
        first_bad: list[str] = []
        try:
            for item in read_traces(path, display_name=cfg.relative(path)):
                if isinstance(item, RecordError):
                    counts["unreadable"] += 1
                    src = item.source
                    if len(first_bad) < 3 and src is not None:
                        first_bad.append(f"{src.file}:{src.line}")
                elif isinstance(item, Skipped):
                    counts["skipped"] += 1
                else:
                    counts["records"] += 1
        except InputError as exc:
            items.append(Item(name, "invalid", _first_line(exc), fs.required, at))
            continue
        readable += 1
        totals.update(counts)
        bad = counts["unreadable"]
        detail = (
            f"{counts['records']} record(s), {bad} unreadable"
            + (f" ({', '.join(first_bad)}{', ...' if bad > len(first_bad) else ''})" if bad else "")
            + f", {counts['skipped']} skipped"
        )
        status: Status = "ok"
        if bad and counts["records"]:
            status = "partial"
        elif bad:
            status = "invalid"
        elif not counts["records"]:
            status, detail = "partial", f"no records ({counts['skipped']} skipped): is it empty?"
        items.append(Item(name, status, detail, required=fs.required, where=at))
    head = Item(
        "sql_traces",
        _worst(i.status for i in items),
        f"{readable} of {len(fs.files)} file(s) readable: {totals['records']} record(s), "
        f"{totals['unreadable']} unreadable, {totals['skipped']} skipped",
        required=required,
        where=where,
    )
    return [head, *items]


def check_dbt(ctx: Context) -> list[Item]:
    """``dbt.files``: present, and read together as one semantic layer with the dbt reader
    (dbt-semantic-interfaces); what dbt rejects is listed with file and line."""
    from policystrata.case import SourceText
    from policystrata.lower.dbt import read_semantic_layer
    from policystrata.model.yamlsrc import read_text_file

    cfg = ctx.config
    fs = cfg.model.dbt
    required = "dbt" in cfg.model.gate.required_inputs or bool(fs and fs.required)
    where = ctx.where("dbt")
    if fs is None or not fs.files:
        return [
            Item(
                "dbt",
                "not_configured",
                "no dbt semantic layer files (dbt.files)",
                required=required,
                where=where,
            )
        ]
    items, texts = [], []
    for i, rel in enumerate(fs.files):
        name, at = f"dbt: {rel}", ctx.where("dbt", "files", i)
        path = _resolve(ctx, rel, "dbt", "files", i)
        if isinstance(path, Item):
            items.append(_renamed(path, name, fs.required, at))
            continue
        if not path.is_file():
            items.append(_absent(name, rel, fs.required, at))
            continue
        try:
            texts.append(SourceText(cfg.relative(path), read_text_file(path, cfg.relative(path))))
        except InputError as exc:
            items.append(Item(name, "invalid", str(exc), required=fs.required, where=at))
            continue
        items.append(Item(name, "ok", "present", required=fs.required, where=at))
    if not texts:
        head = Item("dbt", _worst(i.status for i in items), "no dbt file readable", required, where)
        return [head, *items]
    try:
        layer = read_semantic_layer(tuple(texts))
    except StrataError as exc:
        errors = [str(e) for e in _errors(exc)]
        for item in items:
            mine = [e for e in errors if e.startswith(item.name.removeprefix("dbt: ") + ":")]
            if mine:
                item.status, item.detail, item.problems = "invalid", mine[0], mine
        head = Item(
            "dbt",
            "invalid",
            f"dbt rejects the semantic layer: {len(errors)} error(s), first: {errors[0]}",
            required=required,
            where=where,
            problems=errors,
        )
        return [head, *items]
    detail = (
        f"{len(texts)} file(s) read by dbt-semantic-interfaces: "
        f"{len(layer.semantic_models)} semantic model(s), {len(layer.metrics)} metric(s)"
    )
    head = Item(
        "dbt",
        _worst(i.status for i in items),
        detail,
        required=required,
        where=where,
        problems=list(layer.notes),
    )
    return [head, *items]


def check_database(ctx: Context) -> list[Item]:
    """The database section: the server the scan would use (binaries for a throwaway one, or
    the configured DSN answering), the schema and seed it would load, the checks it runs, and
    whether chdb (ClickHouse) is importable. Nothing is started."""
    from policystrata.db.server import find_bindir

    cfg = ctx.config
    db = cfg.model.database
    gate_wants = "database" in cfg.model.gate.required_inputs
    required = bool(db and db.required) or gate_wants
    items: list[Item] = []
    if db is None:
        items.append(
            Item(
                "database",
                "not_configured",
                "no database section: the scan judges the artifacts only (static); add "
                "`database:` for real-row evidence",
                required=gate_wants,
            )
        )
    else:
        checks = f"{len(db.rls_checks)} rls_check(s), {len(db.state_assertions)} state assertion(s)"
        run = "imported SQL executed" if db.execute_imported_sql else "imported SQL not executed"
        items.append(
            Item(
                "database",
                "ok",
                f"mode {db.mode}, required: {str(db.required).lower()}, {run}, {checks}"
                + (" (start_docker: no Docker here, a throwaway server is used)") * db.start_docker,
                required=required,
                where=ctx.where("database"),
            )
        )
    if db is not None and db.admin_url:
        items.append(_dsn_item(ctx, "database.admin_url", db.admin_url, required))
        if db.app_url:
            items.append(_dsn_item(ctx, "database.app_url", db.app_url, False))
    else:
        bindir = find_bindir()
        if bindir is not None:
            items.append(
                Item(
                    "database.server",
                    "ok",
                    f"PostgreSQL server binaries in {bindir} (the scan starts a throwaway "
                    "server when a record first needs it)",
                    required=required,
                )
            )
        else:
            items.append(
                Item(
                    "database.server",
                    "missing",
                    "no PostgreSQL server binaries (apt-get install postgresql, or set "
                    "database.admin_url)"
                    + ("" if db is not None else ": only needed with a database section"),
                    required=required,
                )
            )
    if db is not None:
        items += [_db_file(ctx, "schema", required), _db_file(ctx, "seed", False)]
    items.append(_chdb_item())
    return items


def _dsn_item(ctx: Context, name: str, dsn: str, required: bool) -> Item:
    """Does the DSN answer? Its host:port is shown, never its password."""
    where = ctx.where(*name.split("."))
    try:
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(dsn)
    except Exception as exc:  # psycopg says what is malformed
        return Item(name, "invalid", f"not a DSN: {_first_line(exc)}", required, where)
    shown = f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"
    if not ctx.connect:
        return Item(name, "ok", f"{shown} (not contacted)", required, where)
    try:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
            version = conn.info.server_version
    except Exception as exc:  # any failure to connect is the item's detail
        text = _first_line(exc)
        secret = params.get("password")
        if secret:
            text = text.replace(str(secret), "***")
        return Item(name, "invalid", f"{shown} does not answer: {text}", required, where)
    major, minor = divmod(int(version), 10000)
    return Item(name, "ok", f"{shown} answers (PostgreSQL {major}.{minor})", required, where)


def _db_file(ctx: Context, key: str, required: bool) -> Item:
    """database.schema / seed: the config's file, else the domain's."""
    cfg, name = ctx.config, f"database.{key}"
    db = cfg.model.database
    assert db is not None
    rel = db.schema_ if key == "schema" else db.seed
    where = ctx.where("database", key)
    if rel is not None:
        path = _resolve(ctx, rel, "database", key)
        if isinstance(path, Item):
            return _renamed(path, name, required, where)
        shown = cfg.relative(path)
    else:
        if ctx.domain_dir is None:
            return Item(name, "missing", "the domain did not resolve", required, where)
        path = ctx.domain_dir / f"{key}.sql"
        shown = f"the domain's {key}.sql"
    if not path.is_file():
        return Item(name, "missing", f"{shown}: not found", required, where)
    return Item(name, "ok", f"{shown}: {_statements(path)}", required, where)


def _chdb_item() -> Item:
    if importlib.util.find_spec("chdb") is None:
        return Item(
            "chdb",
            "missing",
            "chdb is not installed (needed only for ClickHouse domains: pip install chdb)",
        )
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("chdb")
    except PackageNotFoundError:  # pragma: no cover - importable without metadata
        ver = "unknown version"
    return Item("chdb", "ok", f"chdb {ver} importable (ClickHouse domains)")


def check_outputs(ctx: Context) -> list[Item]:
    """Where the scan writes (``output``, else ``<config dir>/scan-out``), and which reports."""
    cfg = ctx.config
    m = cfg.model
    try:
        out = cfg.output_dir()
    except InputError as exc:
        return [Item("output", "invalid", str(exc), True, ctx.where("output"))]
    shown = cfg.relative(out) if out.is_relative_to(cfg.root) else str(m.output)
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if out.exists() and not out.is_dir():
        status: Status = "invalid"
        detail = f"{shown} exists and is not a directory"
    elif not os.access(existing, os.W_OK):
        status, detail = "invalid", f"{shown}: {cfg.relative(existing)} is not writable"
    else:
        status = "ok"
        detail = f"{shown}" + (" (exists)" if out.exists() else " (created by the scan)")
    db = m.database
    sarif = m.sarif or bool(db and db.sarif)
    return [
        Item("output", status, detail, required=True, where=ctx.where("output")),
        Item(
            "sarif",
            "ok" if sarif else "not_configured",
            "scan.sarif is written (SARIF 2.1.0 for code scanning)"
            if sarif
            else "sarif: false (set sarif: true to write scan.sarif)",
            where=ctx.where("sarif"),
        ),
        Item("junit", "ok", "junit.xml is written with every scan (one testcase per check)"),
    ]


def check_doctor_inputs(ctx: Context) -> list[Item]:
    """The published inputs only doctor reads: ``policy_docs``, ``prompt_manifests``,
    ``source_maps``, ``runtime_manifests``, ``runtime_events``. Each listed file: present,
    missing or unreadable (JSON / JSONL / YAML files must parse; others must be UTF-8 text)."""
    items: list[Item] = []
    for key in DOCTOR_INPUTS:
        fs: FileSet | None = getattr(ctx.config.model, key)
        where = ctx.where(key)
        if fs is None or not fs.files:
            required = bool(fs and fs.required)
            status: Status = "missing" if required else "not_configured"
            detail = "required, but no files are listed" if required else "not configured"
            items.append(Item(key, status, detail, required, where))
            continue
        files = []
        for i, rel in enumerate(fs.files):
            name, at = f"{key}: {rel}", ctx.where(key, "files", i)
            path = _resolve(ctx, rel, key, "files", i)
            if isinstance(path, Item):
                files.append(_renamed(path, name, fs.required, at))
            elif not path.is_file():
                why = "required" if fs.required else "not required"
                detail = f"{rel} does not exist ({why})"
                files.append(Item(name, "missing", detail, fs.required, at))
            else:
                problem = _unreadable(path, ctx.config.relative(path))
                if problem:
                    files.append(Item(name, "invalid", problem, fs.required, at))
                else:
                    files.append(Item(name, "ok", "present, readable", fs.required, at))
        readable = sum(1 for f in files if f.status == "ok")
        present = sum(1 for f in files if f.status != "missing")
        head = Item(
            key,
            _worst(f.status for f in files),
            f"{present} of {len(files)} file(s) present, {readable} readable (read by "
            "`strata doctor` only)",
            fs.required,
            where,
        )
        items += [head, *files]
    return items


def _unreadable(path: Path, shown: str) -> str | None:
    """Why a doctor input cannot be read, or None."""
    from policystrata.model.yamlsrc import load_yaml_text, read_text_file

    try:
        text = read_text_file(path, shown)
        if path.suffix == ".json":
            json.loads(text)
        elif path.suffix == ".jsonl":
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        json.loads(line)
                    except json.JSONDecodeError as exc:
                        return f"{shown}:{n}: not valid JSON: {exc.msg}"
        elif path.suffix in (".yaml", ".yml"):
            load_yaml_text(text, shown)
    except InputError as exc:
        return str(exc)
    except json.JSONDecodeError as exc:
        return f"{shown}:{exc.lineno}: not valid JSON: {exc.msg}"
    return None


def check_gate(ctx: Context) -> list[Item]:
    """``gate.required_inputs`` against what the config provides (the published meaning of
    present), and the gate's thresholds."""
    cfg = ctx.config
    g = cfg.model.gate
    present = cfg.present_inputs()
    items = [
        Item(
            "gate",
            "ok",
            ("fails on findings of severity >= " if g.fail_on_high_confidence else "never fails: ")
            + (
                f"{g.fail_on_severity} with confidence >= {g.fail_on_confidence}"
                f" (more than {g.max_findings} tolerated)"
                if g.fail_on_high_confidence
                else "every finding is a warning (fail_on_high_confidence: false)"
            ),
            where=ctx.where("gate"),
        )
    ]
    if not g.required_inputs:
        items.append(
            Item(
                "gate.required_inputs",
                "not_configured",
                "the gate requires no input (gate.required_inputs)",
            )
        )
    for i, name in enumerate(g.required_inputs):
        where = ctx.where("gate", "required_inputs", i)
        if present.get(name):
            items.append(Item(f"gate.required_inputs: {name}", "ok", "present", True, where))
        else:
            items.append(
                Item(
                    f"gate.required_inputs: {name}",
                    "missing",
                    f"required by the gate but the config provides none: the scan reports "
                    f"missing_required_{name} (critical)",
                    True,
                    where,
                )
            )
    f = cfg.model.fuzz
    items.append(
        Item(
            "fuzz",
            "ok" if f.enabled and f.max_cases_per_trace else "not_configured",
            f"enabled: seed {f.seed}, up to {f.max_cases_per_trace} mutant(s) per clean record"
            if f.enabled and f.max_cases_per_trace
            else "disabled (fuzz.enabled: false or max_cases_per_trace: 0)",
            where=ctx.where("fuzz"),
        )
    )
    return items


def check_tenancy(ctx: Context) -> list[Item]:
    """``tenancy``: every tenant column and every canonical predicate's column resolves to a
    table and column the domain knows."""
    t = ctx.config.model.tenancy
    if t is None:
        return [
            Item(
                "tenancy",
                "not_configured",
                "no tenancy section: tenant columns come from the domain",
            )
        ]
    where = ctx.where("tenancy")
    if ctx.domain is None:
        return [Item("tenancy", "invalid", "not checked: the domain does not load", True, where)]
    tables = ctx.domain.schema.tables
    scan = ctx.domain.scan_tenancy
    problems = list(scan.notes) if scan is not None else []
    resolved = 0
    entries = [
        (table, col, prov)
        for table, cols in (scan.tenant_columns if scan else {}).items()
        for col, prov in cols
    ]
    entries += [(c.table, c.column, c.where) for c in (scan.canonical if scan else [])]
    for table, col, prov in entries:
        if table == "*":
            problems.append(f"{prov}: column '{col}': no known table has it")
        elif table not in tables:
            problems.append(f"{prov}: table '{table}' is not a table of the domain")
        elif col not in tables[table].columns:
            problems.append(f"{prov}: '{table}' has no column '{col}'")
        else:
            resolved += 1
    total = len(entries) + sum(1 for p in problems if "no known table has it" in p)
    status: Status = "ok"
    if problems:
        status = "invalid" if not resolved else "partial"
    detail = (
        f"{resolved} tenant column(s)/predicate(s) resolve to the domain's tables"
        + (f", {len(problems)} problem(s): {problems[0]}" if problems else "")
        if total or problems
        else "configured, but lists nothing"
    )
    return [Item("tenancy", status, detail, True, where, problems=problems)]


# ------------------------------------------------------------------------------- helpers


def _resolve(ctx: Context, rel: str, *keys: str | int) -> Path | Item:
    """A config path through the scan's own path rules, or an invalid item saying why not."""
    try:
        return ctx.config.resolve(rel, *keys)
    except InputError as exc:
        return Item(str(keys[0]), "invalid", str(exc))


def _renamed(item: Item, name: str, required: bool, where: str | None) -> Item:
    item.name, item.required, item.where = name, required, where
    return item


def _absent(name: str, rel: str, required: bool, where: str | None) -> Item:
    why = "required: the scan stops" if required else "not required: the scan skips it"
    return Item(name, "missing", f"{rel} does not exist ({why})", required, where)


Check = Callable[[Context], list[Item]]

#: The checks, in report order (each reads what the earlier ones loaded).
CHECKS: tuple[Check, ...] = (
    check_config,
    check_rules,
    check_domain,
    check_traces,
    check_dbt,
    check_database,
    check_outputs,
    check_doctor_inputs,
    check_gate,
    check_tenancy,
)


def run_doctor(config: ScanConfig, *, connect: bool = True) -> DoctorReport:
    """Every check over the loaded config (``connect=False``: configured DSNs are not
    contacted)."""
    ctx = Context(config, connect=connect)
    report = DoctorReport(config=config.name)
    for check in CHECKS:
        report.items.extend(check(ctx))
    return report


# ------------------------------------------------------------------------------- rendering

STATUS_MARK = {
    "ok": "ok",
    "missing": "MISSING",
    "partial": "PARTIAL",
    "invalid": "INVALID",
    "not_configured": "-",
}


def to_markdown(report: DoctorReport) -> str:
    """The report as a Markdown table (deterministic).

    >>> print(to_markdown(DoctorReport("c.yaml", [Item("x", "ok", "fine | dandy", True)])))
    ## PolicyStrata doctor: `c.yaml`
    <BLANKLINE>
    1 ok, 0 missing, 0 partial, 0 invalid, 0 not configured; --strict passes.
    <BLANKLINE>
    | status | item | required | detail |
    |---|---|---|---|
    | ok | x | yes | fine \\| dandy |
    <BLANKLINE>
    """
    out = [f"## PolicyStrata doctor: `{report.config}`", "", summary_line(report), ""]
    out += ["| status | item | required | detail |", "|---|---|---|---|"]
    for i in report.items:
        cells = [i.status, i.name, "yes" if i.required else "", i.detail]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"


def summary_line(report: DoctorReport) -> str:
    c = report.counts()
    failing = report.strict_failures()
    verdict = f"--strict fails on {len(failing)} required item(s)" if failing else "--strict passes"
    return (
        f"{c['ok']} ok, {c['missing']} missing, {c['partial']} partial, {c['invalid']} invalid, "
        f"{c['not_configured']} not configured; {verdict}."
    )


def render(report: DoctorReport, fmt: str) -> str:
    """``json`` or ``markdown`` text (the table is rendered by the command)."""
    if fmt == "json":
        return json.dumps(report.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return to_markdown(report)
    raise ValueError(f"unknown format {fmt}")
