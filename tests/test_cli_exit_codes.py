"""Exit codes CI can trust: 0 clean, 1 findings, 2 usage / input / internal error (never 1 for a
crash), 130 after Ctrl-C; one clear line for each bad input; per-record isolation in
``strata check FILE``; a throwaway server that does not outlive a signalled ``strata``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policystrata.cli import main
from policystrata.db.server import find_bindir

GOOD_SQL = (
    "select count(distinct support_tickets.id) as value from accounts "
    "join support_tickets on support_tickets.account_id = accounts.id "
    "where accounts.tenant_id = 'acme' and support_tickets.opened_at >= date '2026-05-01' "
    "and support_tickets.opened_at < date '2026-06-01' limit 100"
)
IR = "ticket_count during last_month limit 100"


def _default_signals() -> None:
    """The child takes the signals this test sends even when the suite was started with them
    ignored (under nohup, or as a background job of a shell: both are inherited across exec)."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and "Bytecode" not in line]


def _trace(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def scan_dir(tmp_path: Path) -> Path:
    _trace(tmp_path / "t.jsonl", [{"id": "a", "principal": "acme_analyst", "sql": GOOD_SQL}])
    (tmp_path / "policystrata.yaml").write_text(
        "version: 1\ndomain: support_saas\nsql_traces: {files: [t.jsonl]}\n"
    )
    return tmp_path


# ---------------------------------------------------------------- 0, 1, 2


def test_clean_findings_and_usage() -> None:
    clean = run(
        "check", "--db", "none", "--principal", "acme_analyst", "--ir", IR, "--sql", GOOD_SQL
    )
    assert clean.exit_code == 0, clean.output
    findings = run("check", "--db", "none", "--principal", "acme_analyst", "--sql", "delete from x")
    assert findings.exit_code == 1
    usage = run("check", "--no-such-option")
    assert usage.exit_code == 2


def test_an_internal_error_is_exit_2_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("policystrata.check.Checker.check", boom)
    monkeypatch.delenv("STRATA_DEBUG", raising=False)
    args = ["check", "--db", "none", "--principal", "acme_analyst", "--sql", GOOD_SQL]
    result = run(*args)
    assert result.exit_code == 2  # never 1: CI reads 1 as "findings"
    assert _lines(result.stderr) == [
        "error: internal error in `strata check`: ZeroDivisionError: a bug "
        "(run `strata --debug ...` for the traceback)"
    ]
    debug = run("--debug", *args)
    assert debug.exit_code == 2
    assert "Traceback (most recent call last)" in debug.stderr
    assert "ZeroDivisionError: a bug" in debug.stderr


def test_a_broken_record_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policystrata.check import Checker

    real = Checker.check

    def flaky(self: Checker, case: object, **kwargs: object) -> object:
        if getattr(case, "id", "") == "bad":
            raise RuntimeError("this record breaks the checker")
        return real(self, case, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Checker, "check", flaky)
    records = [
        {"id": "first", "principal": "acme_analyst", "sql": GOOD_SQL},
        {"id": "bad", "principal": "acme_analyst", "sql": GOOD_SQL},
        {"id": "deep", "principal": "acme_analyst", "sql": GOOD_SQL},
        {"id": "last", "principal": "acme_analyst", "sql": "delete from accounts"},
    ]
    path = _trace(tmp_path / "t.jsonl", records)
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}"  # nested too deeply
    path.write_text("\n".join(lines) + "\n")
    result = run("check", "--db", "none", str(path), "--format", "json")
    assert result.exit_code == 1
    by_id = {r["case"]["id"]: r for r in json.loads(result.stdout)["results"]}
    assert by_id["first"]["verdict"] == "clean"
    assert by_id["bad"]["verdict"] == "error"
    error = by_id["bad"]["errors"][0]
    assert error["kind"] == "internal_error"
    assert (error["source"]["file"], error["source"]["line"]) == ("t.jsonl", 2)
    assert "RuntimeError: this record breaks the checker" in error["message"]
    deep = next(r for r in by_id.values() if r["errors"] and r["errors"][0]["source"]["line"] == 3)
    assert "nested too deeply" in deep["errors"][0]["message"]
    assert by_id["last"]["verdict"] == "violation"


def test_sql_beyond_the_per_record_budget_is_a_finding_not_a_stall(tmp_path: Path) -> None:
    huge = "select count(*) from accounts where " + " or ".join(
        f"region = 'r{i}'" for i in range(4000)
    )
    path = _trace(
        tmp_path / "t.jsonl",
        [
            {"id": "huge", "principal": "acme_analyst", "sql": huge},
            {"id": "ok", "principal": "acme_analyst", "sql": GOOD_SQL},
        ],
    )
    t0 = time.perf_counter()
    result = run("check", "--db", "none", str(path), "--format", "json")
    assert time.perf_counter() - t0 < 60
    assert result.exit_code == 1
    by_id = {r["case"]["id"]: r for r in json.loads(result.stdout)["results"]}
    assert by_id["ok"]["verdict"] == "clean"
    [w] = by_id["huge"]["witnesses"]
    assert w["check"] == "unanalysable_sql" and "characters long" in w["message"]


def test_a_record_beyond_the_size_budget_is_a_finding_for_that_record(tmp_path: Path) -> None:
    path = _trace(
        tmp_path / "t.jsonl",
        [
            {"id": "big", "principal": "acme_analyst", "sql": GOOD_SQL, "pad": "x" * 5_000_000},
            {"id": "ok", "principal": "acme_analyst", "sql": GOOD_SQL},
        ],
    )
    result = run("check", "--db", "none", str(path), "--format", "json")
    assert result.exit_code == 1
    results = json.loads(result.stdout)["results"]
    assert [r["verdict"] for r in results] == ["error", "clean"]
    assert "bytes long" in results[0]["errors"][0]["message"]


# ---------------------------------------------------------------- bad input: one line, exit 2


@contextlib.contextmanager
def _read_only_dir(base: Path) -> Iterator[Path]:
    """A directory nobody can write into: a read-only tmpfs as root (root ignores modes), else
    mode 0555."""
    target = base / "ro"
    target.mkdir()
    if os.geteuid() != 0:
        target.chmod(0o555)
        try:
            yield target
        finally:
            target.chmod(0o755)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(target)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"as root, a read-only directory needs a ro mount: {mounted.stderr!r}")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False)


def test_a_read_only_out_is_one_line(scan_dir: Path) -> None:
    with _read_only_dir(scan_dir) as ro:
        out = ro / "out"
        result = run(
            "scan",
            "--config",
            str(scan_dir / "policystrata.yaml"),
            "--db",
            "none",
            "--out",
            str(out),
        )
    assert result.exit_code == 2
    [line] = _lines(result.stderr)
    assert line.startswith("error: ") and str(out) in line
    assert "Read-only file system" in line or "Permission denied" in line


def test_a_full_out_is_one_line(scan_dir: Path) -> None:
    out = scan_dir / "out"
    out.mkdir()
    (out / "scan.json").symlink_to("/dev/full")
    result = run(
        "scan", "--config", str(scan_dir / "policystrata.yaml"), "--db", "none", "--out", str(out)
    )
    assert result.exit_code == 2
    [line] = _lines(result.stderr)
    assert "No space left on device" in line and "scan.json" in line


def test_a_nul_byte_in_a_path_is_one_line(scan_dir: Path) -> None:
    result = run(
        "scan",
        "--config",
        str(scan_dir / "policystrata.yaml"),
        "--db",
        "none",
        "--out",
        "out\x00dir",
    )
    assert result.exit_code == 2
    assert _lines(result.stderr) == ["error: a path contains a NUL byte"]
    cfg = scan_dir / "nul.yaml"
    cfg.write_text('version: 1\ndomain: support_saas\nsql_traces: {files: ["t\\0.jsonl"]}\n')
    result = run("scan", "--config", str(cfg), "--db", "none")
    assert result.exit_code == 2
    assert _lines(result.stderr) == [
        "error: nul.yaml:3: sql_traces.files[0]: the path contains a NUL byte"
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 100 levels deep"),
        ("x: " + "[" * 150 + "]" * 150 + "\n", "nested more than 100 levels deep"),
        ("a: &a [*a]\n", "a YAML alias refers to a node that contains it"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"l{i}: &l{i} [" + ", ".join([f"*{'a' if i == 1 else f'l{i - 1}'}"] * 10) + "]\n"
                for i in range(1, 10)
            ),
            "aliases expand this document to more than 100000 nodes",
        ),
    ],
    ids=["deep", "deep-but-parsable", "recursive-alias", "billion-laughs"],
)
def test_hostile_yaml_is_one_line(tmp_path: Path, body: str, message: str) -> None:
    cfg = tmp_path / "policystrata.yaml"
    cfg.write_text("version: 1\ndomain: support_saas\n" + body)
    t0 = time.perf_counter()
    result = run("scan", "--config", str(cfg), "--db", "none")
    assert time.perf_counter() - t0 < 30
    assert result.exit_code == 2
    [line] = _lines(result.stderr)
    assert line.startswith("error: policystrata.yaml") and message in line


def test_deeply_nested_json_is_one_line(tmp_path: Path) -> None:
    witness = tmp_path / "w.json"
    witness.write_text("[" * 100000 + "]" * 100000)
    result = run("explain", str(witness))
    assert result.exit_code == 2
    assert _lines(result.stderr) == [f"error: {witness}: not valid JSON here: nested too deeply"]


# ---------------------------------------------------------------- signals, with a real server

pg = pytest.mark.postgres


def _strata() -> str:
    exe = Path(sys.executable).parent / "strata"
    return str(exe) if exe.exists() else shutil.which("strata") or "strata"


@pytest.fixture
def busy_check(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """``strata check --db auto`` on runaway records, its temp dir private to this test (so
    the server's directory is found among no one else's)."""
    if find_bindir() is None:
        from tests.conftest import _no_postgres

        _no_postgres("no server binaries")
    runaway = "select count(*) from " + ", ".join(f"accounts a{i}" for i in range(20))
    traces = _trace(
        tmp_path / "slow.jsonl",
        [{"id": f"r{i}", "principal": "acme_analyst", "sql": runaway} for i in range(20)],
    )
    tmp = Path(tempfile.mkdtemp(prefix="strata-sig-"))
    tmp.chmod(0o711)  # the server's OS user must reach its own dir inside
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    env.pop("STRATA_DATABASE_URL", None)
    proc = subprocess.Popen(
        [_strata(), "check", "--domain", "support_saas", "--db", "auto", str(traces)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_default_signals,
    )
    try:
        yield proc, tmp
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def _server_of(tmp: Path, timeout: float = 60) -> tuple[Path, int]:
    """Wait until the busy check's server is ready and running queries; its dir and pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pidfile in tmp.glob("strata-pg-*/data/postmaster.pid"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                lines = pidfile.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    time.sleep(3)  # let it get busy with the runaway queries
                    return pidfile.parent.parent, int(lines[0])
        time.sleep(0.1)
    raise AssertionError("the throwaway server never came up")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _gone(server_dir: Path, pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not server_dir.exists() and not _alive(pid):
            return True
        time.sleep(0.1)
    return False


@pg
def test_ctrl_c_exits_130_after_cleanup(busy_check: tuple[subprocess.Popen[str], Path]) -> None:
    proc, tmp = busy_check
    server_dir, pid = _server_of(tmp)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert _gone(server_dir, pid, within=5)


@pg
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_a_signalled_strata_leaves_no_server(
    busy_check: tuple[subprocess.Popen[str], Path], sig: signal.Signals
) -> None:
    proc, tmp = busy_check
    server_dir, pid = _server_of(tmp)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode == -sig
    assert _gone(server_dir, pid, within=10), f"the server outlived strata after {sig.name}"
    assert not list(tmp.glob("strata-pg-*"))
