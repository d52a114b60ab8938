"""The throwaway PostgreSQL server: lifecycle, cleanup, its exposure (a private socket, passwords,
no other OS user), death with its parent, the --db resolver."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from policystrata.db.server import (
    DatabaseUnavailable,
    ThrowawayServer,
    candidate_bindirs,
    find_bindir,
    resolve_db,
)

pytestmark = pytest.mark.postgres


def _default_signals() -> None:
    """The child takes the signals this test sends even when the suite was started with them
    ignored (under nohup, or as a background job of a shell: both are inherited across exec)."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


@pytest.fixture(scope="module")
def bindir() -> Path:
    found = find_bindir()
    if found is None:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("CI=true and no PostgreSQL server binaries", pytrace=False)
        pytest.skip("no PostgreSQL server binaries")
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_env_bindir_is_looked_at_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PG_BINDIR", str(tmp_path))
    assert candidate_bindirs()[0] == tmp_path


def test_start_and_stop_leave_no_process_and_no_dir(bindir: Path) -> None:
    server = ThrowawayServer(bindir)
    with server:
        tmp, pid, port = server.tmpdir, server.pid, server.port
        assert tmp is not None and tmp.is_dir() and pid is not None and port is not None
        with psycopg.connect(server.dsn()) as conn:
            assert conn.execute("SELECT current_setting('fsync')").fetchone() == ("off",)
            assert conn.execute("SHOW listen_addresses").fetchone() == ("",)  # no TCP at all
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
        assert (server.socket_dir / f".s.PGSQL.{port}").exists()
        for private in (tmp, server.socket_dir):
            assert stat.S_IMODE(private.stat().st_mode) == 0o700
        if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as the postgres OS user
            assert Path(f"/proc/{pid}").stat().st_uid == pwd.getpwnam("postgres").pw_uid
    assert not tmp.exists()
    assert not _alive(pid)
    assert server.tmpdir is None and server.port is None


def test_cleanup_after_an_exception(bindir: Path) -> None:
    server = ThrowawayServer(bindir)
    with pytest.raises(RuntimeError, match="boom"), server:
        tmp, pid = server.tmpdir, server.pid
        raise RuntimeError("boom")
    assert tmp is not None and not tmp.exists()
    assert pid is not None and not _alive(pid)


def test_failed_start_removes_the_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import policystrata.db.server as server_mod

    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("initdb", "pg_ctl", "postgres"):
        p = fake / name
        p.write_text("#!/bin/sh\necho broken >&2\nexit 1\n")
        p.chmod(0o755)
    made: list[str] = []
    real_mkdtemp = server_mod.tempfile.mkdtemp

    def mkdtemp(*args: object, **kwargs: object) -> str:
        path = real_mkdtemp(*args, **kwargs)  # type: ignore[call-overload]
        made.append(path)
        return str(path)

    monkeypatch.setattr(server_mod.tempfile, "mkdtemp", mkdtemp)
    server = ThrowawayServer(fake)
    with pytest.raises(DatabaseUnavailable, match="initdb failed"):
        server.start()
    assert len(made) == 1 and not Path(made[0]).exists()
    assert server.tmpdir is None


def test_two_concurrent_servers_get_private_sockets(bindir: Path) -> None:
    with ThrowawayServer(bindir) as a, ThrowawayServer(bindir) as b:
        assert a.socket_dir != b.socket_dir
        assert a.tmpdir != b.tmpdir
        assert a.dsn() != b.dsn()  # and their own passwords
        for s in (a, b):
            with psycopg.connect(s.dsn()) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)


def _parent_with_a_server(bindir: Path) -> tuple[subprocess.Popen[str], Path, int]:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from policystrata.db.server import ThrowawayServer
        s = ThrowawayServer(Path({str(bindir)!r})).start()
        print(s.tmpdir, s.pid, flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=_default_signals,
    )
    assert proc.stdout is not None
    tmp, pid = proc.stdout.readline().split()
    assert Path(tmp).is_dir() and _alive(int(pid))
    return proc, Path(tmp), int(pid)


def _gone_within(seconds: float, tmp: Path, pid: int) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not tmp.exists() and not _alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_stops_the_server_and_removes_the_dir(bindir: Path, sig: signal.Signals) -> None:
    proc, tmp, pid = _parent_with_a_server(bindir)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert _gone_within(10, tmp, pid)


def test_sigkill_of_the_parent_leaves_no_server_after_10_seconds(bindir: Path) -> None:
    """SIGKILL runs no handler and no atexit: the watchdog beside the server cleans up."""
    proc, tmp, pid = _parent_with_a_server(bindir)
    proc.kill()
    proc.wait(timeout=30)
    assert _gone_within(10, tmp, pid), "the server or its temp dir outlived its parent"


def test_no_trust_authentication_and_a_wrong_password_is_refused(bindir: Path) -> None:
    with ThrowawayServer(bindir) as server:
        assert server.tmpdir is not None
        hba = (server.datadir / "pg_hba.conf").read_text()
        assert [line.split() for line in hba.splitlines() if line.strip()] == [
            ["local", "all", "all", "scram-sha-256"]
        ]
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(server.dsn(user="postgres", password="guess"))
        with pytest.raises(psycopg.OperationalError):  # nothing listens on TCP
            psycopg.connect(
                "host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=3
            )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another OS user")
def test_another_os_user_cannot_connect(bindir: Path) -> None:
    """As `nobody`, even with the superuser's password, the socket is out of reach (0700)."""
    psql = bindir / "psql" if (bindir / "psql").is_file() else shutil.which("psql")
    setpriv = shutil.which("setpriv")
    assert psql and setpriv, "psql and setpriv are needed for this test"
    nobody = pwd.getpwnam("nobody")
    with ThrowawayServer(bindir) as server:
        env = {"PATH": os.environ.get("PATH", ""), "PGCONNECT_TIMEOUT": "3"}
        res = subprocess.run(
            [
                setpriv,
                f"--reuid={nobody.pw_uid}",
                f"--regid={nobody.pw_gid}",
                "--clear-groups",
                "--",
                str(psql),
                server.dsn(),  # the superuser's own DSN, password included
                "-c",
                "COPY (SELECT 1) TO PROGRAM 'id'",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert res.returncode != 0
        assert "Permission denied" in res.stderr, res.stderr
        # the same client as ourselves does connect: the refusal is the socket's, not a typo
        ok = subprocess.run(
            [str(psql), server.dsn(), "-At", "-c", "SELECT 1"],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert ok.stdout.strip() == "1", ok.stderr


def test_resolve_db_none_and_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRATA_DATABASE_URL", raising=False)
    assert resolve_db("none").server is None
    choice = resolve_db("postgresql://u:pw@127.0.0.1:1/x")
    assert choice.mode == "external"
    assert "dbname=y" in choice.server.dsn("y")  # type: ignore[union-attr]
    role = choice.server.dsn("y", "strata_app", "secret")  # type: ignore[union-attr]
    assert "user=strata_app" in role and "password=secret" in role
    with pytest.raises(DatabaseUnavailable):
        resolve_db("bogus")


def test_resolve_db_auto_without_binaries_says_so_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import policystrata.db.server as server_mod

    monkeypatch.setattr(server_mod, "find_bindir", lambda: None)
    monkeypatch.setattr(server_mod, "_WARNED", set())
    a = resolve_db("auto")
    b = resolve_db("auto")
    assert a.mode == b.mode == "none"
    err = capsys.readouterr().err
    assert err.count("without real-database evidence") == 1


def test_resolve_db_auto_starts_and_close_cleans_up(
    bindir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRATA_DATABASE_URL", raising=False)
    choice = resolve_db("auto")
    assert choice.mode == "throwaway"
    server = choice.server
    assert isinstance(server, ThrowawayServer)
    tmp, pid = server.tmpdir, server.pid
    with psycopg.connect(server.dsn()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    choice.close()
    assert tmp is not None and not tmp.exists()
    assert pid is not None and not _alive(pid)


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_missing_postgres_fails_under_ci_and_skips_otherwise(
    ci: str, outcome: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import _no_postgres

    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if outcome == "failed" else pytest.skip.Exception
    with pytest.raises(expected, match="no binaries"):
        _no_postgres("no binaries")
