"""The scan pipeline: config -> trace records -> the same checks as ``strata check`` -> findings.

The pipeline is a visible tuple of stages (:data:`STAGES`); each reads and extends a
:class:`ScanState`. Records are judged one at a time (``read_traces`` is lazy): a broken record
is a finding at its ``file:line`` and every other record is still scanned.

>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "t.jsonl").write_text('{"id": "a", "principal": "nobody", "sql": "select 1"}\\n')
>>> _ = (d / "policystrata.yaml").write_text(
...     "version: 1\\ndomain: support_saas\\nsql_traces: {files: [t.jsonl]}\\n")
>>> from policystrata.scan.config import load_scan_config
>>> report = run_scan(load_scan_config(d / "policystrata.yaml"), db_spec="none")
>>> [(f.check, f.location.line) for f in report.findings]
[('unknown_principal', 1)]
>>> report.gate.exit_code
1
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policystrata import __version__, gctune
from policystrata.case import Case
from policystrata.check import Checker, Recall
from policystrata.engine import check_proof
from policystrata.engine.ast import Positive
from policystrata.errors import InputError, StrataError, did_you_mean
from policystrata.facts import Fact, FactSet
from policystrata.jsonfile import read_json_documents
from policystrata.results import (
    CONFIDENCE_RANK,
    SEVERITY_RANK,
    BaselineDiff,
    CheckOutcome,
    Finding,
    GateResult,
    Location,
    ScanReport,
    content_key,
    stable_id,
)
from policystrata.scan.config import CONFIDENCES, DOCTOR_INPUTS, ScanConfig
from policystrata.scan.database import (
    ExecutionCounts,
    db_check_cases,
    reference_sql,
    scan_databases,
)
from policystrata.scan.findings import (
    probable_fix,
    publish,
    recheck_command,
    repro_record,
    what_changed,
)
from policystrata.scan.store import CheckStore, FindingStore, Spill
from policystrata.traces import REGRESSION_CASES, Skipped, TraceItem, read_traces
from policystrata.witness import CaseResult, RecordError, SourceRef, Witness

Progress = Callable[[str], None]
INPUT_CHECK = "input.trace_record"


@dataclass
class ScanState:
    """What the stages share: the config, the checker, and what has been found so far."""

    config: ScanConfig
    checker: Checker
    db_spec: str | None = None
    progress: Progress = lambda _msg: None
    # what grows with the records is kept on disk (:mod:`policystrata.scan.store`): the
    # findings as made (ids, published keys, baseline and gate are set by finish_findings)...
    findings: Spill[Finding] = field(default_factory=lambda: Spill())
    checks: CheckStore = field(default_factory=lambda: CheckStore())  # ...the check outcomes
    records: dict[str, int] = field(
        default_factory=lambda: {
            "scanned": 0,
            "clean": 0,
            "with_findings": 0,
            "errors": 0,
            "skipped": 0,
        }
    )
    regression_cases: dict[str, str] = field(default_factory=dict)  # finding/record -> class
    # each clean record and (when fuzzed where it was checked) its fuzzing, kept only when
    # the fuzz stage runs (it reads them back); the records with findings are only counted
    cases: Spill[tuple[Case, Any]] = field(default_factory=lambda: Spill())
    cases_with_findings: int = 0
    fuzzes: bool = False  # the fuzz stage runs
    # what publish() reads of each record's pass-through fields, by record id (the last
    # record with an id, as before); equal ones shared
    metas: dict[str, dict[str, Any]] = field(default_factory=dict)
    _equal_metas: dict[Any, dict[str, Any]] = field(default_factory=dict)
    database: dict[str, Any] = field(default_factory=dict)  # the database checks' counts
    layer_checks: dict[str, list[str]] = field(default_factory=dict)
    check_alias: dict[str, str] = field(default_factory=dict)
    databases: Any = None  # the scan's DomainDatabases, when it has a database
    database_why: str = ""  # why it has none
    execution: ExecutionCounts = field(default_factory=ExecutionCounts)
    canonical: dict[str, int] = field(default_factory=dict)  # why each record had a reference
    schema_checks: set[str] = field(default_factory=set)  # need keys/RLS from schema.sql
    tenancy_checks: set[str] = field(default_factory=set)  # need a known tenant column
    tenants_known: bool = True  # some table's tenant column is known (schema or config)
    metric_checks: set[str] = field(default_factory=set)  # compare SQL with metric_agg
    notes: list[str] = field(default_factory=list)  # for people (stderr), not part of scan.json
    jobs: int = 1  # processes checking records (see judged_records)
    ray: tuple[str | None] | None = None  # --executor ray: (cluster address or None)
    no_fuzz: bool = False  # --no-fuzz
    fuzz: dict[str, Any] = field(default_factory=dict)  # the fuzz stage's report section
    memo: CleanMemo = field(default_factory=lambda: CleanMemo())  # clean records, by content

    def published_meta(self, meta: dict[str, Any]) -> dict[str, Any]:
        """The fields of ``meta`` that publish() reads; one dict for equal ones."""
        out = {k: meta[k] for k in PUBLISHED_META if k in meta}
        try:
            key = tuple((k, type(v), v) for k, v in out.items())  # 1 and True differ here
            return self._equal_metas.setdefault(key, out)
        except TypeError:  # a value that is not hashable (a list, an object)
            return out


def layer_checks(checker: Checker) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Check ids of every ``layer_fault`` rule by the surface it judges, and the alias of each
    rule id (a second clause without its own ``@id`` counts as the first clause's check)."""
    out: dict[str, list[str]] = {}
    alias: dict[str, str] = {}
    by_check: dict[tuple[str, str], str] = {}
    for rule in checker.program.rules:
        if rule.head.pred != "layer_fault" or len(rule.head.args) < 4:
            continue
        surface = getattr(rule.head.args[1], "value", None)
        check = getattr(rule.head.args[3], "value", None)
        if not isinstance(surface, str):
            continue
        check_id = rule.id
        if ".layer_fault." in rule.id and isinstance(check, str):
            check_id = by_check.get((surface, check), rule.id)
        elif isinstance(check, str):
            by_check.setdefault((surface, check), rule.id)
        alias[rule.id] = check_id
        if check_id not in out.get(surface, []):
            out.setdefault(surface, []).append(check_id)
    return out, alias


def checks_reading(
    checker: Checker, alias: dict[str, str], pred: str, *, through: bool = False
) -> set[str]:
    """Check ids whose ``layer_fault`` rule reads ``pred`` (a positive literal of its body; with
    ``through``, also a predicate one of whose rules reads ``pred`` that way, at any depth)."""
    program = checker.program
    needs = {pred}  # pred, and (with ``through``) every predicate whose rules need it below
    while through:
        more = {
            rule.head.pred
            for rule in program.rules
            if rule.head.pred not in needs
            and any(isinstance(lit, Positive) and lit.atom.pred in needs for lit in rule.body)
        }
        if not more:
            break
        needs |= more
    out = set()
    for rule in program.rules:
        if rule.head.pred == "layer_fault" and any(
            isinstance(lit, Positive) and lit.atom.pred in needs for lit in rule.body
        ):
            out.add(alias.get(rule.id, rule.id))
    return out


def schema_checks(checker: Checker, alias: dict[str, str]) -> set[str]:
    """Check ids whose rule reads ``schema_known``: they need keys or RLS from schema.sql, so a
    domain without one leaves them unknown (reported as skipped, never as passed)."""
    return checks_reading(checker, alias, "schema_known")


def unknown_checks(state: ScanState, case: Case) -> dict[str, str]:
    """Checks that cannot judge this record, with why: those that need schema.sql when the
    domain has none, and those that compare the SQL with the declared metric (rules reading
    ``metric_agg``) when the record's metric has an expression that is not understood."""
    domain = state.checker.domain
    out: dict[str, str] = {}
    if not domain.schema_known:
        out.update(
            dict.fromkeys(state.schema_checks, "unknown without schema.sql (needs keys or RLS)")
        )
        if not state.tenants_known:
            out.update(
                dict.fromkeys(
                    state.tenancy_checks,
                    "unknown without schema.sql or declared tenant columns (no table is known "
                    "to be tenant-owned)",
                )
            )
    metric = domain.policy.resolve_metric(case.ir.metric) if case.ir is not None else None
    reason = domain.metric_unknown(metric) if metric is not None else None
    if reason is not None:
        why = f"unknown: the expression of metric {metric} is not understood ({reason})"
        out.update(dict.fromkeys(state.metric_checks, why))
    return out


def _layers_exercised(case: Case) -> list[str]:
    """Layers whose artifact the record carries (their checks ran for it)."""
    layers = []
    if case.manifest is not None:
        layers.append("manifest")
    if case.grammar is not None:
        layers.append("grammar")
    layers.append("validator")
    if case.sql is not None:
        layers.append("compiler")
    layers.append("database")
    if case.release_decision is not None:
        layers.append("release")
    return layers


# ---------------------------------------------------------------------------------- records


class _LineReader:
    """Read line N of a file; calls come in increasing N (one lazy pass, for record errors)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: Any = None
        self.n = 0
        self.line = ""

    def __call__(self, n: int) -> str:
        if self.handle is None:
            self.handle = self.path.open("rb")
        while self.n < n:
            data = self.handle.readline()
            if not data:
                break
            self.n += 1
            # a line that is not UTF-8 is a finding; its repro shows it with U+FFFD
            self.line = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
        return self.line if self.n == n else ""

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _where(file: str, line: int | None) -> str:
    return f"{file}:{line}" if line is not None else file


def record_error_finding(state: ScanState, error: RecordError, rel: str, raw_line: str) -> Finding:
    """A record that could not be judged: a finding at its line, with a re-check command."""
    src = error.source
    line = src.line if src else None
    record_key = error.case_id or f"line-{content_key(raw_line)}"
    cfg = state.config
    return Finding(
        id=stable_id(f"input.{error.kind}", rel, record_key, error.kind),
        kind="record_error",
        rule_id=f"input.{error.kind}",
        check=error.kind,
        key=error.kind,
        message=error.message,
        severity="high",  # unreadable trace input gates, as in the published line
        confidence="high",
        surface="input",
        owner="trace exporter",
        witness_class="input_error",
        location=Location(file=rel, line=line),
        record_id=error.case_id,
        what_changed=f"the trace record at {_where(rel, line)} cannot be read: {error.message}",
        probable_fix=(
            f"emit one JSON object per line with id, principal and sql ({_where(rel, line)}; "
            "see docs/trace-contract.md)"
        ),
        repro={"line": raw_line.rstrip("\n")[:2000]},
        recheck=f"strata check {cfg.domain_display()} {rel}",
        details={"record_error": error.model_dump(mode="json", exclude_none=True)},
    )


def witness_finding(state: ScanState, case: Case, witness: Witness, rel: str) -> Finding:
    """A finding from a witness (the localized violation or a defence layer's fault). A
    semantic layer witness points at the dbt item (or the policy entry) its proof names, and is
    re-checked with ``strata check-integration``; a database check's at the check in the
    config, re-checked by the scan."""
    cfg, domain = state.config, state.checker.domain
    line = case.origin.line if case.origin else None
    rules_arg = " ".join(f"--rules {cfg.relative(p)}" for p in cfg.rule_paths())
    owner: str = witness.localized_surface
    if case.semantic_layer is not None:
        from policystrata.integrations.dbt import finding_location

        files = [f.name for f in case.semantic_layer]
        rel, line = finding_location(witness, files)
        if rel == "policy.yaml" and cfg.model.domain_path:
            rel = cfg.model.domain_path.rstrip("/") + "/policy.yaml"
        owner = "dbt semantic layer"
    where = _where(rel, line)
    if case.semantic_layer is not None:
        repro = None
        paths = " ".join(f"--path {f.name}" for f in case.semantic_layer)
        recheck = " ".join(
            p
            for p in (
                "strata check-integration dbt-semantic",
                cfg.domain_display(),
                rules_arg,
                paths,
            )
            if p
        )
        fix = f"{witness.fix or witness.message} ({where})"
    elif case.db_check is not None:
        repro = None
        recheck = f"strata scan --config {cfg.name} --db auto"
        fix = f"{witness.fix or witness.message} ({where})"
    else:
        repro = repro_record(witness, case.meta)
        recheck = recheck_command(cfg.domain_display(), repro, rules_arg)
        built_at = case.meta.get("source")
        fix = probable_fix(
            witness,
            where=where,
            built_at=str(built_at) if built_at else None,
            tenant_columns=domain.tenant_columns(),
            trace_file=rel,
        )
    return Finding(
        id=stable_id(witness.rule_id, rel, case.id, _semantic_key(witness)),
        kind="witness",
        rule_id=witness.rule_id,
        check=witness.check,
        key=witness.key,
        message=witness.message,
        severity=witness.severity,
        confidence=witness.confidence,
        surface=witness.localized_surface,
        owner=owner,
        witness_class=witness.witness_class,
        evidence_level=witness.evidence.level,
        location=Location(file=rel, line=line),
        record_id=case.id,
        principal=case.principal,
        regression_case=case.meta.get("regression_case"),
        containment_layer=witness.containment_layer,
        what_changed=what_changed(witness, rel, where),
        probable_fix=fix,
        repro=repro,
        recheck=recheck,
        witness=witness,
    )


def _semantic_key(witness: Witness) -> Any:
    """The key a finding id uses: the check's object; for SQL the parser rejected, the kind of
    rejection (the parser's message may change between versions)."""
    return witness.check if witness.rule_id.startswith("input.") else witness.key


def scan_traces(state: ScanState) -> None:
    """Every record of every trace file, one at a time."""
    cfg = state.config
    paths = cfg.trace_paths()
    for path in paths:
        rel = cfg.relative(path)
        state.progress(f"scanning {rel}")
        raw_line = _LineReader(path)
        first_seen: dict[str, int] = {}
        for item, judged in judged_records(state, read_traces(path, display_name=rel)):
            if isinstance(item, Case):
                _note_record(state, item, rel, first_seen)
            if isinstance(item, Skipped):
                state.records["skipped"] += 1
                continue
            if isinstance(item, RecordError):
                line = item.source.line if item.source and item.source.line else 0
                finding = record_error_finding(state, item, rel, raw_line(line))
                state.records["errors"] += 1
                state.findings.append(finding)
                state.checks.append(
                    CheckOutcome(
                        layer="input",
                        check=INPUT_CHECK,
                        record=item.case_id or f"{rel}:{line}",
                        location=finding.location,
                        status="failed",
                        finding_ids=[finding.id],
                        message=item.message,
                    )
                )
                continue
            state.records["scanned"] += 1
            try:
                result, fuzzed = judged if judged is not None else (None, None)
                if isinstance(result, StrataError):
                    raise result
                found = judge_case(state, item, rel, result, fuzzed)
            except StrataError as exc:  # engine timeout, proof that does not check: this record
                at = item.origin.line if item.origin else None
                error = RecordError(
                    kind="record_not_judged",
                    message=f"the record could not be judged: {exc}",
                    source=SourceRef(file=rel, line=at),
                    case_id=item.id,
                )
                found = [record_error_finding(state, error, rel, "")]
                state.findings.extend(found)
            state.records["with_findings" if found else "clean"] += 1
        raw_line.close()
    r = state.records
    if not r["scanned"] and not r["errors"]:
        state.notes.append(
            f"no trace records were scanned ({len(paths)} trace file(s) read, "
            f"{r['skipped']} record(s) skipped): is the export empty?"
        )


# ------------------------------------------------------------------------- parallel checks

_CHUNK = 16  # records per task
_WORKER_CHECKER: Checker | None = None
_WORKER_FUZZ: Fuzzer | None = None
_WORKER_MEMO: CleanMemo | None = None

#: A record's judgement from a worker: its check result (or the error that stopped it) and,
#: for a clean record when the scan fuzzes, its fuzzing (:class:`.fuzz.RecordFuzz`).
Judgement = tuple[CaseResult | StrataError, Any]


@dataclass
class Fuzzer:
    """What a worker needs to fuzz the clean records it checks: the fuzz settings and its
    :class:`~policystrata.scan.fuzz.FuzzContext` (built once per process)."""

    seed: int
    max_cases: int
    ctx: Any

    @classmethod
    def of(cls, config: ScanConfig, checker: Checker, no_fuzz: bool) -> Fuzzer | None:
        """The scan's fuzzer, or None when the fuzz stage does not run."""
        from policystrata.scan.fuzz import FuzzContext, not_fuzzed_why

        s = config.model.fuzz
        if not_fuzzed_why(s, no_fuzz) is not None:
            return None
        return cls(s.seed, s.max_cases_per_trace, FuzzContext(checker.domain))


class CleanMemo:
    """Records judged already, remembered by content up to their ids
    (:func:`~policystrata.scan.fuzz.content_key`: everything the checker sees of a record but
    its id and origin), bounded (least recently used first out).

    A clean verdict is what the rules derived from the record's facts: no ``violation``, no
    defence-layer ``layer_fault``, no input error. A record with the same content has the same
    facts up to its case id, so the same rule evaluation; its clean result is made for its own
    id without lowering and evaluating the same facts again. A record with findings is kept
    as the checker's :class:`~policystrata.check.Recall` (its facts and checked proofs) when
    the checker itself would answer a repeat of it by renaming (see
    :meth:`~policystrata.check.Checker.recall_of`); a repeat then gets the kept proofs renamed
    to its own id and line (:meth:`~policystrata.check.Checker.recalled`), the result the
    checker gives it in full. Never used with a database: real rows are evidence of their own
    per record."""

    SIZE = 4096
    FOUND_SIZE = 512  # records with findings (each keeps its facts and proofs)

    def __init__(self) -> None:
        from policystrata.scan.fuzz import memo_enabled

        self.enabled = memo_enabled()
        self.clean: OrderedDict[str, bool] = OrderedDict()
        self.found: OrderedDict[str, Recall] = OrderedDict()

    def check(self, checker: Checker, case: Case) -> CaseResult:
        """``checker.check(case, defence=True)``, or the same result from memory."""
        from policystrata.scan.fuzz import content_key

        if not self.enabled or checker.context.databases is not None:
            return checker.check(case, defence=True)
        key = content_key(case)
        if key in self.clean:
            self.clean.move_to_end(key)
            return CaseResult(case=case.info(), verdict="clean")
        recall = self.found.get(key)
        if recall is not None:
            again = checker.recalled(recall, case)
            if again is not None:
                self.found.move_to_end(key)
                return again
        result = checker.check(case, defence=True)
        if result.verdict == "clean" and not result.witnesses and result.evidence is None:
            self.clean[key] = True
            if len(self.clean) > self.SIZE:
                self.clean.popitem(last=False)
        elif recall is None and result.witnesses and not result.errors:
            kept = checker.recall_of(case)
            if kept is not None and kept.defence:
                self.found[key] = kept
                if len(self.found) > self.FOUND_SIZE:
                    self.found.popitem(last=False)
        return result


def check_records(
    checker: Checker,
    chunk: list[TraceItem],
    fuzzer: Fuzzer | None = None,
    memo: CleanMemo | None = None,
) -> list[Judgement | None]:
    """The check result of each record of the chunk (None for what is not a record), with
    the fuzzing of each clean record when ``fuzzer`` is given (the checker has no database:
    mutants are judged from their artifacts, as the fuzz stage judges them)."""
    from policystrata.scan.fuzz import fuzz_record

    out: list[Judgement | None] = []
    for item in chunk:
        if not isinstance(item, Case):
            out.append(None)
            continue
        try:
            if memo is not None:
                result = memo.check(checker, item)
            else:
                result = checker.check(item, defence=True)
        except StrataError as exc:  # sent back as its message (any subclass pickles so)
            out.append((StrataError(str(exc)), None))
            continue
        fuzzed = None
        if fuzzer is not None and not result.witnesses and not result.errors:
            fuzzed = fuzz_record(checker, fuzzer.ctx, item, fuzzer.seed, fuzzer.max_cases)
        out.append((result, fuzzed))
    return out


def _check_records(chunk: list[TraceItem]) -> list[Judgement | None]:
    assert _WORKER_CHECKER is not None
    return check_records(_WORKER_CHECKER, chunk, _WORKER_FUZZ, _WORKER_MEMO)


def _chunked(items: Iterable[TraceItem]) -> Iterator[list[TraceItem]]:
    chunk: list[TraceItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def judged_records(
    state: ScanState, items: Iterable[TraceItem]
) -> Iterator[tuple[TraceItem, Judgement | None]]:
    """Each trace item with its check result, in file order (None: not checked here — a
    record is then checked by :func:`judge_case`, in this process). With ``state.jobs`` > 1
    forked worker processes check the records (:mod:`policystrata.parallel`); the order, and
    so every output, is the same whatever the number of jobs."""
    if (state.jobs <= 1 and state.ray is None) or state.checker.context.databases is not None:
        # one process with a database: its sessions are not shared across processes
        for item in items:
            yield item, None
        return
    global _WORKER_CHECKER, _WORKER_FUZZ, _WORKER_MEMO
    from collections import deque

    from policystrata.parallel import ordered_map
    from policystrata.scan.fuzz import content_key

    # chunks in flight, in order (results come so), with what the parent answers itself
    sent: deque[tuple[list[TraceItem], dict[int, Any]]] = deque()
    # clean records already judged, by content: their fuzzing (None: not fuzzed), reusable
    known: OrderedDict[str, Any] = OrderedDict()
    remember = state.memo.enabled

    def chunks() -> Iterator[list[TraceItem]]:
        for chunk in _chunked(items):
            answered: dict[int, Any] = {}
            out: list[TraceItem | None] = list(chunk)
            for n, item in enumerate(chunk):
                if remember and isinstance(item, Case):
                    key = content_key(item)
                    if key in known:  # judged clean already: not sent to a worker again
                        known.move_to_end(key)
                        answered[n] = known[key]
                        out[n] = None
            sent.append((chunk, answered))
            yield out  # type: ignore[misc]

    def judged(chunk: list[TraceItem], answered: dict[int, Any], results: list[Any]) -> Any:
        for n, (item, got) in enumerate(zip(chunk, results, strict=True)):
            if n in answered:
                assert isinstance(item, Case)
                fuzzed = answered[n]
                rebased = fuzzed.rebased(item) if fuzzed is not None else None
                yield item, (CaseResult(case=item.info(), verdict="clean"), rebased)
                continue
            if remember and isinstance(item, Case) and got is not None:
                result, fuzzed = got
                if (
                    isinstance(result, CaseResult)
                    and result.verdict == "clean"
                    and not result.witnesses
                    and result.evidence is None
                    and (fuzzed is None or fuzzed.reusable())
                ):
                    known[content_key(item)] = fuzzed
                    if len(known) > CleanMemo.SIZE:
                        known.popitem(last=False)
            yield item, got

    _WORKER_CHECKER = state.checker
    _WORKER_FUZZ = Fuzzer.of(state.config, state.checker, state.no_fuzz)
    _WORKER_MEMO = CleanMemo()
    try:
        if state.ray is not None:  # (cluster address or None for a local runtime)
            from policystrata.distributed import ScanSpec, ray_map

            spec = ScanSpec(str(state.config.path.resolve()), state.no_fuzz)
            mapped = ray_map(spec, chunks(), state.ray[0], state.jobs)
        else:
            mapped = ordered_map(_check_records, chunks(), state.jobs)
        for results in mapped:
            yield from judged(*sent.popleft(), results)
    finally:
        _WORKER_CHECKER = _WORKER_FUZZ = _WORKER_MEMO = None


def _note_record(state: ScanState, case: Case, rel: str, first_seen: dict[str, int]) -> None:
    """Notes on a record that is judged as given but is probably not what the exporter meant:
    an id used twice (its findings get ``~2`` ids that depend on record order) and an unknown
    ``regression_case``."""
    line = case.origin.line if case.origin and case.origin.line else 0
    if case.id in first_seen:
        state.notes.append(
            f"{rel}:{line}: record id '{case.id}' is also used at {rel}:{first_seen[case.id]}; "
            "ids should be unique (duplicates get ~2, ~3 finding ids, which follow record order)"
        )
    else:
        first_seen[case.id] = line
    rc = case.meta.get("regression_case")
    if rc is not None and rc not in REGRESSION_CASES:
        state.notes.append(
            f"{rel}:{line}: regression_case {rc!r} is not one of {', '.join(REGRESSION_CASES)}"
            + did_you_mean(str(rc), REGRESSION_CASES)
        )


#: The pass-through fields of a record that :func:`~.findings.publish` reads.
PUBLISHED_META = ("regression_case", "source", "timestamp", "evidence_level", "expected_policy")


def judge_case(
    state: ScanState,
    case: Case,
    rel: str,
    result: CaseResult | None = None,
    fuzzed: Any = None,
) -> list[Finding]:
    """Check one record (or take its ``result``, checked already, and ``fuzzed``, its
    fuzzing when a worker fuzzed it); its findings and one check outcome per exercised layer
    check."""
    checker = state.checker
    if checker.has_database or checker.context.databases is not None:
        _sql, why = reference_sql(checker.domain, case)
        state.canonical[why] = state.canonical.get(why, 0) + 1
    if result is None:
        result = state.memo.check(checker, case)
    if result.evidence is not None:
        state.execution.add(result.evidence.details)
    witnesses = result.witnesses
    findings = [witness_finding(state, case, w, rel) for w in witnesses]
    line = case.origin.line if case.origin else None
    for err in result.errors:
        findings.append(record_error_finding(state, err, rel, ""))
    state.findings.extend(findings)
    if findings:
        state.cases_with_findings += 1
    elif state.fuzzes:
        state.cases.append((case, fuzzed))
    state.metas[case.id] = state.published_meta(case.meta)
    loc = Location(file=rel, line=line)
    state.checks.append(
        CheckOutcome(
            layer="input",
            check=INPUT_CHECK,
            record=case.id,
            location=loc,
            status="failed" if result.errors else "passed",
            finding_ids=[f.id for f in findings if f.kind == "record_error"],
            message="; ".join(e.message for e in result.errors) or None,
        )
    )
    failed: dict[str, list[str]] = {}
    alias = state.check_alias
    for f in findings:
        failed.setdefault(alias.get(f.rule_id, f.rule_id), []).append(f.id)
    for w in witnesses:
        for other in w.also_failed:
            failed.setdefault(alias.get(other.rule_id, other.rule_id), [])
    unknown = unknown_checks(state, case)
    for layer in _layers_exercised(case):
        for rule_id in state.layer_checks.get(layer, []):
            hit = rule_id in failed
            skipped = not hit and rule_id in unknown
            state.checks.append(
                CheckOutcome(
                    layer=layer,
                    check=rule_id,
                    record=case.id,
                    location=loc,
                    status="failed" if hit else ("skipped" if skipped else "passed"),
                    finding_ids=failed.get(rule_id, []),
                    message=unknown[rule_id] if skipped else None,
                )
            )
    return findings


def scan_database_checks(state: ScanState) -> None:
    """The config's ``rls_checks`` and ``state_assertions``: each a case of its own (its query's
    rows against what the check states), judged by ``rules/db_checks.dl``."""
    cfg, checker = state.config, state.checker
    checker.attach_databases(state.databases)
    counts: dict[str, dict[str, int]] = {}
    for case in db_check_cases(cfg):
        section = case.id.split(".", 1)[0]
        if state.databases is None:  # no database by choice or circumstance: said, not judged
            bucket = counts.setdefault(section, {"ran": 0, "passed": 0, "failed": 0, "not_run": 0})
            bucket["not_run"] += 1
            state.checks.append(
                CheckOutcome(
                    layer="database",
                    check=case.id,
                    record=case.id.split(".", 1)[1],
                    location=Location(
                        file=cfg.name, line=case.origin.line if case.origin else None
                    ),
                    status="skipped",
                    message=f"not run: {state.database_why}",
                )
            )
            continue
        state.progress(f"database check {case.id}")
        result = checker.check(case)
        findings = [witness_finding(state, case, w, cfg.name) for w in result.witnesses]
        state.findings.extend(findings)
        not_run = any(w.check == "check_not_run" for w in result.witnesses)
        bucket = counts.setdefault(section, {"ran": 0, "passed": 0, "failed": 0, "not_run": 0})
        bucket["not_run" if not_run else "ran"] += 1
        if not not_run:
            bucket["failed" if findings else "passed"] += 1
        state.checks.append(
            CheckOutcome(
                layer="database",
                check=case.id,
                record=case.id.split(".", 1)[1],
                location=Location(file=cfg.name, line=case.origin.line if case.origin else None),
                status="skipped" if not_run else ("failed" if findings else "passed"),
                finding_ids=[f.id for f in findings],
                message="; ".join(w.message for w in result.witnesses) or None,
            )
        )
    state.database.update(counts)


def scan_fuzz(state: ScanState) -> None:
    """The published fuzz operators over every clean record (:mod:`policystrata.scan.fuzz`)."""
    from policystrata.scan.fuzz import scan_fuzz as fuzz_stage

    fuzz_stage(state)


def scan_integrations(state: ScanState) -> None:
    """The dbt semantic layer of the config (``dbt.files``, checked together as one layer):
    one case through the checker, its witnesses turned into findings like a record's."""
    cfg = state.config
    paths = cfg.dbt_paths()
    if not paths:
        return
    from policystrata.integrations.dbt import check_semantic_layer, semantic_layer_case

    state.progress("comparing the dbt semantic layer with the policy")
    case = semantic_layer_case([(p, cfg.relative(p)) for p in paths])
    checked = check_semantic_layer(state.checker, case)
    findings = [
        witness_finding(state, case, w, cfg.relative(paths[0])) for w in checked.result.witnesses
    ]
    state.findings.extend(findings)
    state.notes.extend(checked.notes)
    state.notes.extend(checked.unchecked)
    failed: dict[str, list[str]] = {}
    for f in findings:
        failed.setdefault(f.rule_id, []).append(f.id)
    checks = sorted(
        r.id
        for r in state.checker.program.rules
        if r.head.pred == "violation" and r.id.startswith("dbt.")
    )
    for rule_id in checks:
        state.checks.append(
            CheckOutcome(
                layer="integration",
                check=rule_id,
                record=case.id,
                location=Location(file=cfg.relative(paths[0])),
                status="failed" if rule_id in failed else "passed",
                finding_ids=failed.get(rule_id, []),
            )
        )
    for note in checked.unchecked:
        state.checks.append(
            CheckOutcome(
                layer="integration",
                check="dbt.not_compared",
                record=case.id,
                status="skipped",
                message=note,
            )
        )


STAGES: tuple[Callable[[ScanState], None], ...] = (
    scan_traces,
    scan_database_checks,
    scan_integrations,
    scan_fuzz,
)


# ------------------------------------------------------------------------------- the verdict


class _Dedupe:
    """A finding id made unique in finding order: the second ``x`` is ``x~2``, and so on."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, finding_id: str) -> str:
        n = self.seen.get(finding_id, 0) + 1
        self.seen[finding_id] = n
        return f"{finding_id}~{n}" if n > 1 else finding_id


def load_baseline(path: Path) -> set[str]:
    """Finding ids of a previous ``scan.json`` (or a findings.jsonl)."""
    items = read_json_documents(path, "baseline")
    if path.suffix == ".jsonl":
        return {_baseline_id(data, path, n) for n, data in items}
    data = items[0][1]
    findings = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(findings, list):
        raise InputError(
            "not a PolicyStrata scan.json (no 'findings' list): give a previous scan.json or "
            "findings.jsonl",
            file=str(path),
        )
    return {_baseline_id(f, path, None) for f in findings}


def _baseline_id(finding: Any, path: Path, line: int | None) -> str:
    if not isinstance(finding, dict) or not isinstance(finding.get("id"), str):
        raise InputError("a baseline finding without an 'id'", file=str(path), line=line)
    return finding["id"]


def apply_gate(
    findings: Iterable[Finding],
    gate: Any,
    *,
    fail_on_severity: str | None = None,
    fail_on_confidence: str | None = None,
) -> GateResult:
    """Mark each finding gating or a warning; exit 1 when gating findings exceed the limit."""
    counter = _Gate(gate, fail_on_severity, fail_on_confidence)
    for f in findings:
        counter.mark(f)
    return counter.result()


class _Gate:
    """The gate's thresholds and its counts, finding by finding (see :func:`apply_gate`)."""

    def __init__(
        self, gate: Any, fail_on_severity: str | None, fail_on_confidence: str | None
    ) -> None:
        self.gate = gate
        self.sev = fail_on_severity or gate.fail_on_severity
        self.conf = fail_on_confidence or gate.fail_on_confidence
        self.gating = self.total = 0

    def mark(self, f: Finding) -> None:
        """Set ``f.gating`` and count it."""
        gate, sev, conf = self.gate, self.sev, self.conf
        f.gating = (
            not f.advisory
            and gate.fail_on_high_confidence
            and f.baseline != "unchanged"
            and SEVERITY_RANK[f.severity] >= SEVERITY_RANK[sev]
            and CONFIDENCE_RANK[f.confidence] >= CONFIDENCE_RANK[conf]
        )
        self.gating += f.gating
        self.total += 1

    def result(self) -> GateResult:
        gate, gating = self.gate, self.gating
        passed = gating <= gate.max_findings
        return GateResult(
            passed=passed,
            exit_code=0 if passed else 1,
            gating=gating,
            warnings=self.total - gating,
            thresholds={
                "fail_on_high_confidence": gate.fail_on_high_confidence,
                "fail_on_severity": self.sev,
                "fail_on_confidence": self.conf,
                "max_findings": gate.max_findings,
            },
        )


def prepare_domain(config: ScanConfig) -> Callable[[Any], None]:
    """What the scan config adds to the domain before its facts are compiled: the tenancy
    section (tenant columns, canonical predicates) and the gate's required inputs."""

    def prepare(domain: Any) -> None:
        from policystrata.facts import FactSet, Provenance
        from policystrata.scan.tenancy import ScanTenancy

        m = config.model

        def at(*path: str | int) -> Provenance:
            return Provenance(config.name, line=config.line(*path))

        if m.tenancy is not None:
            t = m.tenancy
            domain.scan_tenancy = ScanTenancy.read(
                t.canonical_predicates,
                t.tenant_columns,
                t.table_tenant_columns,
                domain,
                lambda key, i: at("tenancy", key, i),
            )
        facts = FactSet()
        for i, name in enumerate(m.gate.required_inputs):
            facts.add("scan_required_input", name, prov=at("gate", "required_inputs", i))
        for input_name, present in config.present_inputs().items():
            if present:
                key = "database" if input_name == "state_assertions" else input_name
                facts.add("scan_input_present", input_name, prov=at(key))
        domain.extra_facts = facts

    return prepare


def gate_findings(state: ScanState) -> None:
    """Findings about the scan's own inputs (rules/gate.dl): proved like every verdict."""
    checker, cfg = state.checker, state.config
    result = checker.engine.evaluate(FactSet())
    for check, key in result.atoms("input_fault"):
        proof = result.prove(Fact("input_fault", (check, key)))
        check_proof(proof, checker.program, result.fact_lookup)
        rule = checker.program.rule(proof.rule) if proof.rule else None
        names = [str(n) for n in cfg.model.gate.required_inputs]
        line = cfg.line("gate", "required_inputs", names.index(str(key))) if key in names else None
        message = proof.message or f"{check}: {key}"
        state.findings.append(
            Finding(
                id=stable_id(proof.rule or "gate", cfg.name, "gate", key),
                kind="record_error",
                rule_id=proof.rule or "gate",
                check=str(check),
                key=key,
                message=message,
                severity=(rule.severity if rule and rule.severity else "critical"),  # type: ignore[arg-type]
                confidence="high",
                surface="input",
                owner="scan config",
                witness_class="input_error",
                location=Location(file=cfg.name, line=line),
                what_changed=f"{message} ({cfg.name}:{line})",
                probable_fix=checker._fix(proof) or message,
                recheck=f"strata scan --config {cfg.name}",
                details={"proof": proof.to_json(), "published_id": f"missing_required_{key}"},
            )
        )


def database_summary(state: ScanState, why: str) -> dict[str, Any]:
    """What the database did for the scan (scan.json ``database``, the summary's real_db)."""
    dbs = state.databases
    if dbs is None or not dbs.started:
        reason = why or (dbs.failure if dbs is not None and dbs.failure else "not needed")
        return {"mode": "none", "ran": False, "reason": reason, **state.database}
    state.notes.extend(n for n in dbs.notes if n not in state.notes)
    counts = state.execution.as_dict()
    return {
        "mode": dbs.mode,
        "ran": True,
        **counts,
        "canonical": dict(sorted(state.canonical.items())),
        **state.database,
        "summary": (
            f"{counts['executed']} imported quer(ies) executed, {counts['refused']} refused by "
            "the gate (read-only guard, execution allow-list), "
            f"{counts['failed']} not executed (timeout, denied, error, no tenant)"
        ),
    }


def scan_notes(config: ScanConfig) -> list[str]:
    """What the scan config asks for that this scan does not do, said once each."""
    m, notes = config.model, []
    if m.database is not None and m.database.start_docker:
        notes.append(
            "database.start_docker: there is no Docker here; the project starts its own "
            "throwaway PostgreSQL instead (compose_file / compose_service are not used)"
        )
    doctor = [k for k in DOCTOR_INPUTS if getattr(m, k) is not None]
    if doctor:
        notes.append(f"{', '.join(doctor)}: read by `strata doctor` only, not by the scan")
    return notes


def run_scan(
    config: ScanConfig,
    *,
    db_spec: str | None = None,
    baseline: Path | None = None,
    progress: Progress | None = None,
    fail_on_severity: str | None = None,
    fail_on_confidence: str | None = None,
    jobs: int = 1,
    ray: tuple[str | None] | None = None,
    no_fuzz: bool = False,
) -> ScanReport:
    """Run every stage and return the report (the caller writes the outputs). ``jobs``
    processes check the records; with ``ray`` (a cluster address, or None for a local runtime)
    ``jobs`` Ray actors do. ``no_fuzz`` skips the fuzz stage."""
    if fail_on_confidence is not None and fail_on_confidence not in CONFIDENCES:
        raise InputError(f"unknown confidence {fail_on_confidence!r}")
    checker = Checker.open(
        config.domain_ref(),
        extra_rule_paths=config.rule_paths(),
        prepare=prepare_domain(config),
    )
    state = ScanState(
        config=config, checker=checker, db_spec=db_spec, jobs=jobs, ray=ray, no_fuzz=no_fuzz
    )
    try:
        return _run(state, baseline, progress, fail_on_severity, fail_on_confidence)
    except BaseException:  # an error, ^C: what is on disk goes now, not when collected
        for spill in (state.findings, state.checks, state.cases):
            spill.close()
        records = state.fuzz.get("records")
        if isinstance(records, Spill):
            records.close()
        raise


def _run(
    state: ScanState,
    baseline: Path | None,
    progress: Progress | None,
    fail_on_severity: str | None,
    fail_on_confidence: str | None,
) -> ScanReport:
    config, checker = state.config, state.checker
    from policystrata.scan.fuzz import not_fuzzed_why

    state.fuzzes = not_fuzzed_why(config.model.fuzz, state.no_fuzz) is None
    state.notes.extend(scan_notes(config))
    if checker.domain.scan_tenancy is not None:
        state.notes.extend(checker.domain.scan_tenancy.notes)
    if progress is not None:
        state.progress = progress
    state.layer_checks, state.check_alias = layer_checks(checker)
    state.schema_checks = schema_checks(checker, state.check_alias)
    state.metric_checks = checks_reading(checker, state.check_alias, "metric_agg")
    state.tenancy_checks = checks_reading(checker, state.check_alias, "tenant_column", through=True)
    # the rules' own answer (rules/drift.dl: tenancy_declared(), which reads no record fact),
    # asked of the engine over the policy facts alone
    empty = checker.engine.evaluate(FactSet(), predicates=["tenancy_declared"])
    state.tenants_known = bool(empty.atoms("tenancy_declared"))
    if not checker.domain.schema_known:
        state.notes.append(
            f"the domain has no schema.sql: {len(state.schema_checks)} check(s) that need keys "
            f"or RLS ({', '.join(sorted(state.schema_checks))}) are reported as skipped, "
            "unknown without schema.sql"
        )
        if not state.tenants_known:
            state.notes.append(
                "no tenant column is known (no schema.sql, no tenancy section in the config): "
                f"{len(state.tenancy_checks)} tenant check(s) "
                f"({', '.join(sorted(state.tenancy_checks))}) are reported as skipped, unknown "
                "without a tenant column"
            )
    for w in checker.domain.warnings:
        state.notes.append(str(w))
    with scan_databases(config, checker.domain, state.db_spec, state.notes) as (dbs, why):
        state.databases, state.database_why = dbs, why
        dbcfg = config.model.database
        if dbcfg is None or dbcfg.execute_imported_sql:
            checker.attach_databases(dbs)
        with gctune.tuned():  # the cyclic GC, for the stages (what is loaded is frozen)
            for stage in STAGES:
                stage(state)
        state.database = database_summary(state, why)
    state.notes.extend(config.missing)
    gate_findings(state)
    state.cases.close()  # read by the fuzz stage; done with
    findings, diff, gate = finish_findings(
        state, baseline, fail_on_severity=fail_on_severity, fail_on_confidence=fail_on_confidence
    )
    report = ScanReport(
        version=__version__,
        config=config.name,
        domain=config.model.domain or checker.domain.name,
        rules_digest=checker.rules_digest,
        records=state.records,
        database=state.database,
        baseline=diff,
        gate=gate,
        notes=state.notes,
        inputs=config.present_inputs(),
        fuzz=state.fuzz,
    )
    # on disk, read back one at a time (assigned, not validated: validating reads them all)
    report.findings = findings  # type: ignore[assignment]
    report.checks = state.checks  # type: ignore[assignment]
    return report


def finish_findings(
    state: ScanState,
    baseline: Path | None,
    *,
    fail_on_severity: str | None = None,
    fail_on_confidence: str | None = None,
) -> tuple[FindingStore, BaselineDiff | None, GateResult]:
    """The findings as reported, in one pass over them as made: unique ids, the published
    keys (:func:`~.findings.publish`), new or unchanged against the baseline, gating or not;
    with the baseline diff and the gate's verdict."""
    previous = load_baseline(baseline) if baseline is not None else None
    dedupe = _Dedupe()
    gate = _Gate(state.config.model.gate, fail_on_severity, fail_on_confidence)
    out = FindingStore()
    new: list[str] = []
    unchanged: list[str] = []
    for f in state.findings:
        f.id = dedupe(f.id)
        publish(f, state.config.name, state.metas.get(f.record_id or ""))
        if previous is not None:
            f.baseline = "unchanged" if f.id in previous else "new"
            (unchanged if f.id in previous else new).append(f.id)
        gate.mark(f)
        out.append(f)
    state.findings.close()
    diff = None
    if baseline is not None and previous is not None:
        fixed = sorted(previous - out.positions.keys())
        diff = BaselineDiff(file=baseline.name, new=new, unchanged=unchanged, fixed=fixed)
    return out, diff, gate.result()
