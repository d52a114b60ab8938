"""A private throwaway PostgreSQL server, or a server the user names by DSN.

:class:`ThrowawayServer` runs ``initdb --no-sync`` into a fresh ``0700`` temp dir and starts
``postgres`` with **no TCP listener** (``listen_addresses=''``): its only socket is a unix socket
in a ``0700`` directory of the temp dir, so no other OS user can even reach it, and every login
(``scram-sha-256``, never ``trust``) needs a password generated for this run. Durability is off
(``fsync``, ``full_page_writes``, ``synchronous_commit``). When the process runs as root the
server binaries run as the ``postgres`` OS user (PostgreSQL refuses to run as root).

It dies with its parent: stopping it (context manager exit, ``atexit``, SIGINT / SIGTERM /
SIGHUP, or an error during start) kills the server and removes the temp dir, and a watchdog
process started beside it does the same within a second when the parent dies without cleaning
up (SIGKILL). ``PR_SET_PDEATHSIG`` would not do: it is cleared when ``setpriv`` changes the
server's credentials.

>>> with ThrowawayServer() as server:                     # doctest: +SKIP
...     server.dsn("postgres")
"host='/tmp/strata-pg-x1y2/sock' port=5432 dbname=postgres user=postgres password=..."

:func:`resolve_db` implements ``--db auto|none|<dsn>``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from policystrata.errors import StrataError

SUPERUSER = "postgres"
"""Bootstrap superuser of a throwaway cluster (``initdb -U``)."""

RUN_AS_USER = "postgres"
"""OS user the server binaries run as when we are root."""

PORT = 5432
"""The port number of the throwaway server's socket file (``.s.PGSQL.5432``): there is no TCP
listener, and the socket directory is private to each server, so every server can use it."""

ENV_BINDIR = "PG_BINDIR"
ENV_DATABASE_URL = "STRATA_DATABASE_URL"


class DatabaseUnavailable(StrataError):
    """No PostgreSQL could be found, started or reached."""


def conninfo(**params: object) -> str:
    """A libpq ``key=value`` connection string; values are quoted when they need it.

    >>> conninfo(host="/tmp/a b", port=5432, user="x", password="it's")
    "host='/tmp/a b' port=5432 user=x password='it\\\\'s'"
    """
    parts = []
    for key, value in params.items():
        if value is None:
            continue
        text = str(value)
        if not text or any(c in text for c in " '\\\t\n"):
            text = "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        parts.append(f"{key}={text}")
    return " ".join(parts)


# --------------------------------------------------------------------------- binaries


def _has_server(bindir: Path) -> bool:
    return all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres"))


def _version_key(path: Path) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in path.parent.name.split("."))
    except ValueError:
        return (-1,)


def candidate_bindirs() -> list[Path]:
    """Where we look for ``initdb``/``pg_ctl``/``postgres``, in order.

    ``$PG_BINDIR``, ``pg_config --bindir``, ``/usr/lib/postgresql/*/bin`` (newest first), then the
    directory of ``initdb`` on ``PATH``.
    """
    out: list[Path] = []
    env = os.environ.get(ENV_BINDIR)
    if env:
        out.append(Path(env))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            res = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
            )
            if res.returncode == 0 and res.stdout.strip():
                out.append(Path(res.stdout.strip()))
    out.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True))
    initdb = shutil.which("initdb")
    if initdb:
        out.append(Path(initdb).resolve().parent)
    seen: list[Path] = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def find_bindir() -> Path | None:
    """The first candidate directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    for p in candidate_bindirs():
        if _has_server(p):
            return p
    return None


# --------------------------------------------------------------------------- server protocol


class Server(Protocol):
    """Anything that can hand out connection strings: a throwaway server or a user DSN.

    ``dsn()`` without a user is the administrator's (it only creates roles and databases);
    ``dsn(db, user, password)`` is a login of one of PolicyStrata's roles."""

    def dsn(
        self, dbname: str | None = None, user: str | None = None, password: str | None = None
    ) -> str: ...

    @property
    def identity(self) -> str: ...

    @property
    def secret(self) -> str | None:
        """The administrator's password, when the connection string has one (our roles'
        passwords are derived from it, so every process that holds it agrees on them)."""
        ...

    @property
    def statement_log(self) -> Path | None: ...


@dataclass
class ExternalServer:
    """A server the user runs, reached through an admin DSN (libpq URI or key=value string).

    The DSN's user must be able to create roles and databases; a superuser can also give the
    RLS-bypass role BYPASSRLS (without one, the comparison with RLS bypassed is not run, and
    PolicyStrata says so once)."""

    admin_dsn: str

    def dsn(
        self, dbname: str | None = None, user: str | None = None, password: str | None = None
    ) -> str:
        from psycopg.conninfo import make_conninfo

        kwargs: dict[str, Any] = {}
        if dbname is not None:
            kwargs["dbname"] = dbname
        if user is not None:
            kwargs["user"] = user
            kwargs["password"] = password
        return make_conninfo(self.admin_dsn, **kwargs)

    @property
    def identity(self) -> str:
        from psycopg.conninfo import conninfo_to_dict

        try:
            params = conninfo_to_dict(self.admin_dsn)
        except Exception:  # a malformed DSN fails later, at connect, with psycopg's message
            return self.admin_dsn
        return f"{params.get('host') or ''}:{params.get('port') or ''}"

    @property
    def secret(self) -> str | None:
        from psycopg.conninfo import conninfo_to_dict

        try:
            password = conninfo_to_dict(self.admin_dsn).get("password")
        except Exception:
            return None
        return str(password) if password else None

    @property
    def statement_log(self) -> Path | None:
        return None

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- cleanup registry

_LIVE: set[ThrowawayServer] = set()
_LIVE_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False

#: Signals after which the servers of this process are stopped before the process goes on dying.
CLEANUP_SIGNALS = tuple(
    s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None
)


def _stop_all() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for s in servers:
        with contextlib.suppress(Exception):
            s.stop()


def _on_signal(signum: int, frame: types.FrameType | None) -> None:
    _stop_all()
    previous = _PREVIOUS_HANDLERS.get(signum)
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


_PREVIOUS_HANDLERS: dict[int, Callable[[int, types.FrameType | None], Any] | int | None] = {}


def _install_handlers() -> None:
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in CLEANUP_SIGNALS:
        with contextlib.suppress(ValueError, OSError):
            previous = signal.getsignal(sig)
            if previous is signal.SIG_IGN:
                continue
            _PREVIOUS_HANDLERS[sig] = previous
            signal.signal(sig, _on_signal)


# --------------------------------------------------------------------------- the watchdog

#: The watchdog: a separate process (its own session, so a terminal's Ctrl-C or a SIGHUP to
#: the process group does not reach it) that polls its parent. When the parent is gone (it was
#: killed before it could stop the server), it shuts the server down (SIGQUIT, then SIGKILL)
#: and removes the temp dir; when the server is gone (stopped by the parent), it exits.
WATCHDOG = r"""
import os, shutil, signal, sys, time
parent, server, tmpdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for s in (signal.SIGINT, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
while os.getppid() == parent and alive(server):
    time.sleep(0.2)
if os.getppid() != parent:
    for sig in (signal.SIGQUIT, signal.SIGKILL):
        if not alive(server):
            break
        try:
            os.kill(server, sig)
        except OSError:
            pass
        deadline = time.monotonic() + 5
        while alive(server) and time.monotonic() < deadline:
            time.sleep(0.05)
    shutil.rmtree(tmpdir, ignore_errors=True)
"""


# --------------------------------------------------------------------------- throwaway server


def _run_as_prefix() -> tuple[list[str], pwd.struct_passwd | None]:
    """Command prefix that drops root to the ``postgres`` OS user (empty when not root)."""
    if os.geteuid() != 0:
        return [], None
    try:
        pw = pwd.getpwnam(RUN_AS_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if not useradd:
            raise DatabaseUnavailable(
                f"running as root and no '{RUN_AS_USER}' OS user exists (and no useradd)"
            ) from None
        subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", RUN_AS_USER],
            check=True,
            capture_output=True,
        )
        pw = pwd.getpwnam(RUN_AS_USER)
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [
            setpriv,
            f"--reuid={pw.pw_uid}",
            f"--regid={pw.pw_gid}",
            "--init-groups",
            "--",
        ], pw
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", RUN_AS_USER, "--"], pw
    raise DatabaseUnavailable("running as root but neither setpriv nor runuser is available")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class ThrowawayServer:
    """A private PostgreSQL cluster in a temp dir; see the module docstring.

    ``log_statements=True`` sets ``log_statement=all`` and logs connections; each log line
    names the session's user and database (``log_line_prefix``). The log is
    :attr:`statement_log`.
    """

    private = True
    """Nobody else can reach this server (see :attr:`policystrata.db.session.Cluster.private`)."""

    def __init__(
        self,
        bindir: Path | None = None,
        *,
        log_statements: bool = False,
        start_timeout: float = 30.0,
    ) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise DatabaseUnavailable(
                "no PostgreSQL server binaries found (looked at $PG_BINDIR, pg_config --bindir, "
                "/usr/lib/postgresql/*/bin, PATH)"
            )
        self.bindir = found
        self.log_statements = log_statements
        self.start_timeout = start_timeout
        self.tmpdir: Path | None = None
        self.port: int | None = None
        self.pid: int | None = None
        self.watchdog_pid: int | None = None
        self.start_seconds: float | None = None
        self._password = secrets.token_urlsafe(24)
        self._prefix: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None

    # -- paths
    @property
    def datadir(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "sock"

    @property
    def log_path(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "server.log"

    @property
    def statement_log(self) -> Path | None:
        """The server log (statements are logged there when ``log_statements`` is on)."""
        return self.log_path if self.log_statements and self.tmpdir else None

    @property
    def identity(self) -> str:
        return f"{self.socket_dir if self.tmpdir else ''}:{PORT}"

    @property
    def secret(self) -> str | None:
        return self._password

    @property
    def running(self) -> bool:
        return self.pid is not None

    def dsn(
        self, dbname: str | None = None, user: str | None = None, password: str | None = None
    ) -> str:
        """A connection string over the private socket: the superuser's (with this run's
        password) when ``user`` is None, else ``user`` with ``password``."""
        if self.port is None:
            raise DatabaseUnavailable("the throwaway server is not running")
        return conninfo(
            host=str(self.socket_dir),
            port=self.port,
            dbname=dbname or "postgres",
            user=user or SUPERUSER,
            password=self._password if user is None else password,
        )

    # -- lifecycle
    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._prefix, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
        )

    def start(self) -> ThrowawayServer:
        if self.running:
            return self
        _install_handlers()
        t0 = time.perf_counter()
        try:
            self._prefix, pw = _run_as_prefix()
            self.tmpdir = Path(tempfile.mkdtemp(prefix="strata-pg-"))  # mode 0700
            self.socket_dir.mkdir(mode=0o700)
            if pw is not None:
                for p in (self.tmpdir, self.socket_dir):
                    os.chown(p, pw.pw_uid, pw.pw_gid)
            with _LIVE_LOCK:
                _LIVE.add(self)
            self._initdb(pw)
            self._start_postmaster()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - t0
        return self

    def _initdb(self, pw: pwd.struct_passwd | None) -> None:
        assert self.tmpdir is not None
        pwfile = self.tmpdir / "pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self._password + "\n")
        if pw is not None:
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        try:
            res = self._run(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.datadir),
                    "--no-sync",
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-local=scram-sha-256",
                    "--auth-host=reject",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ],
                timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if res.returncode != 0:
            raise DatabaseUnavailable(f"initdb failed: {res.stderr.strip() or res.stdout.strip()}")
        # The unix socket only, and a password for every login.
        (self.datadir / "pg_hba.conf").write_text("local all all scram-sha-256\n")

    def _start_postmaster(self) -> None:
        args = [str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(PORT)]
        settings = {
            "listen_addresses": "",
            "unix_socket_directories": str(self.socket_dir),
            "unix_socket_permissions": "0700",
            "password_encryption": "scram-sha-256",
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "max_connections": "50",
            "shared_buffers": "32MB",
            "temp_file_limit": "256MB",
            "log_min_messages": "warning",
            "log_line_prefix": "%m [%p] %u@%d ",
            "TimeZone": "UTC",
            "autovacuum": "off",
            "log_statement": "all" if self.log_statements else "none",
            "log_connections": "on" if self.log_statements else "off",
        }
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self._proc = subprocess.Popen(
                [*self._prefix, *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not the server
            )
        finally:
            log.close()
        pid = self._wait_ready()
        if pid is None:
            self._terminate()
            text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            raise DatabaseUnavailable(f"could not start PostgreSQL: {text.strip()[-2000:]}")
        self.port = PORT
        self.pid = pid
        self._start_watchdog(pid)

    def _wait_ready(self) -> int | None:
        """Wait until postmaster.pid says ``ready``; the postmaster's pid (None if it exited)."""
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        pidfile = self.datadir / "postmaster.pid"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return None
            with contextlib.suppress(OSError, ValueError):
                lines = pidfile.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    return int(lines[0])
            time.sleep(0.01)
        return None

    def _start_watchdog(self, server_pid: int) -> None:
        assert self.tmpdir is not None
        self._watchdog = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-c",
                WATCHDOG,
                str(os.getpid()),
                str(server_pid),
                str(self.tmpdir),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        self.watchdog_pid = self._watchdog.pid

    def _terminate(self) -> None:
        """Immediate shutdown (SIGQUIT), then SIGKILL; reap the child."""
        proc = self._proc
        if proc is None:
            return
        targets = [proc.pid] + ([self.pid] if self.pid and self.pid != proc.pid else [])
        for sig, wait in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
            if proc.poll() is not None and not any(_alive(p) for p in targets[1:]):
                break
            for pid in targets:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait)
        self._proc = None

    def _stop_watchdog(self) -> None:
        dog = self._watchdog
        if dog is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            dog.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            dog.wait(5)
        self._watchdog = None
        self.watchdog_pid = None

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and remove the temp dir. Idempotent."""
        with _LIVE_LOCK:
            _LIVE.discard(self)
        self._terminate()
        self._stop_watchdog()
        self.pid = None
        self.port = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self) -> ThrowawayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ThrowawayServer(dir={self.tmpdir})"


# --------------------------------------------------------------------------- --db resolver


@dataclass
class DbChoice:
    """What ``--db`` resolved to. ``server`` is None when running without a real database."""

    mode: str  # "throwaway" | "external" | "none"
    server: ThrowawayServer | ExternalServer | None
    reason: str = ""

    def close(self) -> None:
        if self.server is not None:
            if isinstance(self.server, ThrowawayServer):
                self.server.stop()
            self.server = None


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"strata: {message}", file=sys.stderr)


def resolve_db(spec: str | None = None, *, log_statements: bool = False) -> DbChoice:
    """Resolve ``--db auto|none|<dsn>`` (``None``: ``$STRATA_DATABASE_URL``, else ``auto``).

    ``auto`` starts a throwaway server when binaries exist; otherwise it returns mode ``none`` and
    says so once on stderr. A DSN is used as given (``postgresql://...`` or ``key=value``).
    The caller owns the result: call :meth:`DbChoice.close` (it stops a throwaway server).
    """
    if spec is None or spec == "":
        spec = os.environ.get(ENV_DATABASE_URL) or "auto"
    if spec == "none":
        return DbChoice("none", None, "--db none")
    if spec == "auto":
        if find_bindir() is None:
            reason = (
                "no PostgreSQL binaries found; running without real-database evidence "
                "(install postgresql or pass --db <dsn>)"
            )
            _warn_once(reason)
            return DbChoice("none", None, reason)
        try:
            server = ThrowawayServer(log_statements=log_statements).start()
        except DatabaseUnavailable as e:
            reason = f"{e}; running without real-database evidence"
            _warn_once(reason)
            return DbChoice("none", None, reason)
        return DbChoice("throwaway", server)
    if "://" in spec or "=" in spec:
        return DbChoice("external", ExternalServer(spec))
    raise DatabaseUnavailable(f"--db expects auto, none or a DSN, got {spec!r}")


@contextlib.contextmanager
def database(spec: str | None = None, *, log_statements: bool = False) -> Iterator[DbChoice]:
    """Context-managed :func:`resolve_db`."""
    choice = resolve_db(spec, log_statements=log_statements)
    try:
        yield choice
    finally:
        choice.close()
