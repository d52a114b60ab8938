"""Hostile trace SQL against a real PostgreSQL, read back from the server's statement log.

The corpus (``tests/sql_fuzz/hostile_exec.txt``: escaped and quoted identifiers, qualified
names, SQL-text functions, role switches in functions and CTEs, COPY ... PROGRAM, large objects,
dblink, advisory locks, FOR UPDATE, writable CTEs, stacked statements, runaway work) goes
through ``strata check`` and ``strata scan`` as a trace file, against a throwaway server started
with ``log_statement=all``. Then, from the server's own log:

- no refused statement ever reached the server;
- the statements on the allow-list that run away were stopped by the statement timeout or the
  temp file limit, and ran only as prepared statements of the roles that may run trace SQL;
- no superuser session ran trace SQL (or any domain text): the administrator only created roles
  and databases;
- and every record's verdict is a finding (``not_executed`` with the reason).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from policystrata.cli import main
from policystrata.db.server import ThrowawayServer, find_bindir

pytestmark = pytest.mark.postgres

CORPUS = Path(__file__).parent / "sql_fuzz" / "hostile_exec.txt"
TRACE_ROLES = {"strata_app", "strata_bypass"}
#: What the administrator's (superuser) sessions may run: roles, databases, catalog lookups.
ADMIN_STATEMENT = re.compile(
    r"^(CREATE ROLE|ALTER ROLE|REVOKE|GRANT \"?strata_owner|CREATE DATABASE|DROP DATABASE|"
    r"ALTER DATABASE|SELECT .* FROM pg_(roles|database)\b)",
    re.IGNORECASE | re.DOTALL,
)


def corpus() -> list[tuple[str, str]]:
    out = []
    for line in CORPUS.read_text().splitlines():
        if line and not line.startswith("#"):
            outcome, _, sql = line.partition("\t")
            out.append((outcome, sql))
    return out


def test_the_corpus_is_large_and_varied() -> None:
    items = corpus()
    assert len(items) >= 40
    assert {o for o, _ in items} == {"refused", "runaway"}


@dataclass
class Entry:
    """One server log entry: who ran what."""

    pid: str
    user: str
    db: str
    level: str
    text: str


LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \w+ \[(\d+)\] (\S*)@(\S*) "
    r"(LOG|ERROR|DETAIL|STATEMENT|FATAL|WARNING|NOTICE|HINT|CONTEXT):\s+(.*)$"
)


def log_entries(text: str) -> list[Entry]:
    entries: list[Entry] = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            entries.append(Entry(*m.groups()))
        elif entries:
            entries[-1].text += "\n" + line
    return entries


@pytest.fixture(scope="module")
def logged_server() -> Iterator[ThrowawayServer]:
    """A throwaway server of its own, logging every statement with its user (the session
    server may be a user's, whose log we cannot read)."""
    if find_bindir() is None:
        from tests.conftest import _no_postgres

        _no_postgres("no server binaries")
    with ThrowawayServer(log_statements=True) as server:
        yield server


def _log_since(server: ThrowawayServer, offset: int) -> list[Entry]:
    log = server.statement_log
    assert log is not None
    return log_entries(log.read_text(errors="replace")[offset:])


def _offset(server: ThrowawayServer) -> int:
    log = server.statement_log
    assert log is not None
    return len(log.read_text(errors="replace"))


def _write_traces(path: Path) -> dict[str, tuple[str, str]]:
    records = {}
    with path.open("w") as f:
        for n, (outcome, sql) in enumerate(corpus(), 1):
            rid = f"h{n:02d}"
            records[rid] = (outcome, sql)
            f.write(json.dumps({"id": rid, "principal": "acme_analyst", "sql": sql}) + "\n")
    return records


def _assert_the_log_is_clean(entries: list[Entry], records: dict[str, tuple[str, str]]) -> None:
    statements = [
        e for e in entries if e.level == "LOG" and re.match(r"(statement|execute)", e.text)
    ]
    assert statements, "the server logged nothing: is log_statement on?"
    for _rid, (outcome, sql) in records.items():
        ran = [e for e in statements if sql in e.text]
        if outcome == "refused":
            assert not ran, f"a refused statement reached the server: {sql}"
            continue
        assert ran, f"an allowed statement never ran: {sql}"
        for e in ran:
            assert e.user in TRACE_ROLES, f"trace SQL ran as {e.user}: {sql}"
            assert e.text.startswith("execute "), f"not a prepared statement: {e.text[:80]}"
        cancelled = [
            e
            for e in entries
            if e.level == "ERROR"
            and "statement timeout" in e.text
            and e.pid in {r.pid for r in ran}
        ]
        assert cancelled, f"the runaway statement was not cancelled: {sql}"
    trace_texts = [sql for _o, sql in records.values()]
    for e in statements:
        body = re.sub(r"^(statement|execute [^:]*):\s*", "", e.text)
        if e.user == "postgres":  # the administrator: roles and databases only
            assert ADMIN_STATEMENT.match(body), f"the superuser ran: {body[:120]}"
        if e.user not in TRACE_ROLES:
            assert not any(sql in body for sql in trace_texts), f"{e.user} ran trace SQL"


def test_hostile_corpus_through_strata_check(
    logged_server: ThrowawayServer, tmp_path: Path
) -> None:
    traces = tmp_path / "hostile.jsonl"
    records = _write_traces(traces)
    offset = _offset(logged_server)
    result = CliRunner().invoke(
        main,
        [
            "check",
            "--domain",
            "support_saas",
            "--db",
            logged_server.dsn(),
            str(traces),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["counts"]["cases"] == len(records)
    assert report["counts"]["clean"] == 0
    for r in report["results"]:
        rid = r["case"]["id"]
        outcome, sql = records[rid]
        assert r["verdict"] == "violation", (rid, sql)
        kinds = {
            f["key"]
            for w in r["witnesses"]
            for f in [w, *w["also_failed"]]
            if f["check"] == "not_executed"
        }
        if outcome == "runaway":
            assert kinds and kinds <= {"timeout", "limit"}, (sql, kinds)
        else:
            assert kinds & {"refused", "not_read_only", "unparseable"}, (sql, kinds)
    _assert_the_log_is_clean(_log_since(logged_server, offset), records)


def test_hostile_corpus_through_strata_scan(logged_server: ThrowawayServer, tmp_path: Path) -> None:
    records = _write_traces(tmp_path / "hostile.jsonl")
    cfg = tmp_path / "policystrata.yaml"
    cfg.write_text(
        "version: 1\ndomain: support_saas\nsql_traces: {files: [hostile.jsonl]}\n"
        "database: {required: true}\n"
    )
    offset = _offset(logged_server)
    result = CliRunner().invoke(
        main,
        [
            "scan",
            "--config",
            str(cfg),
            "--db",
            logged_server.dsn(),
            "--format",
            "json",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["records"]["scanned"] == len(records)
    assert report["records"]["clean"] == 0
    assert report["records"]["with_findings"] == len(records)
    db = report["database"]
    timeouts = sum(1 for o, _ in records.values() if o == "runaway")
    assert db["failed"] == timeouts
    assert db["executed"] == 0
    assert db["refused"] + db["failed"] == len(records)
    by_record: dict[str, set[str]] = {}
    for f in report["findings"]:
        by_record.setdefault(f["record_id"], set()).add(f["check"])
    for rid, (outcome, _sql) in records.items():
        assert by_record.get(rid), f"record {rid} has no finding"
        if outcome == "runaway":
            assert "not_executed" in by_record[rid]
    _assert_the_log_is_clean(_log_since(logged_server, offset), records)
    # nothing of the host leaked into the outputs
    for name in ("scan.json", "findings.jsonl", "report.md"):
        assert "root:x:0:0" not in (tmp_path / "out" / name).read_text()
    # every not_executed finding is a rule with a proof that strata explain re-verifies
    explained = CliRunner().invoke(main, ["explain", str(tmp_path / "out" / "scan.json")])
    assert explained.exit_code == 0, explained.stderr
    assert explained.stdout.count("execution.not_executed") >= timeouts


def test_the_acceptance_command_refuses_without_waiting(tmp_path: Path) -> None:
    """``strata check ... --db auto --sql 'select U&"pg\\005fsleep"(30) limit 1'`` exits 1 with a
    not_executed finding at once: the gate refuses the call (that no server ever sees it is
    shown from the statement log by the corpus tests above, whose first line it is)."""
    import os
    import subprocess
    import sys
    import tempfile
    import time

    exe = Path(sys.executable).parent / "strata"
    private = Path(tempfile.mkdtemp(prefix="strata-acc-"))
    private.chmod(0o711)
    env = {**os.environ, "TMPDIR": str(private)}
    env.pop("STRATA_DATABASE_URL", None)
    t0 = time.perf_counter()
    try:
        res = subprocess.run(
            [
                str(exe) if exe.exists() else "strata",
                "check",
                "--domain",
                "support_saas",
                "--principal",
                "acme_analyst",
                "--db",
                "auto",
                "--ir",
                "ticket_count during last_month limit 100",
                "--sql",
                'select U&"pg\\005fsleep"(30) limit 1',
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        elapsed = time.perf_counter() - t0
        assert res.returncode == 1, res.stderr
        assert elapsed < 20  # far from the 30 s the call would sleep (5 s on an idle machine)
        [result] = json.loads(res.stdout)["results"]
        checks = {w["check"]: w for w in result["witnesses"]}
        assert checks["not_executed"]["key"] == "not_read_only"
        assert 'U&"pg\\005fsleep"' in checks["not_executed"]["message"]
        # the finding is a rule with a proof that strata explain re-verifies
        saved = tmp_path / "report.json"
        saved.write_text(res.stdout)
        explained = CliRunner().invoke(main, ["explain", str(saved)])
        assert explained.exit_code == 0, explained.output
        assert "execution.not_executed" in explained.stdout
    finally:
        import shutil

        shutil.rmtree(private, ignore_errors=True)
