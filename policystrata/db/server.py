"""A throwaway PostgreSQL server, or a server the user names by DSN.

:class:`ThrowawayServer` runs ``initdb --no-sync`` into a fresh temp dir and starts ``postgres``
on ``127.0.0.1`` on a free port, with its unix socket in the temp dir and durability off
(``fsync``, ``full_page_writes``, ``synchronous_commit``). It trusts loopback connections only.
When the process runs as root the server binaries run as the ``postgres`` OS user (PostgreSQL
refuses to run as root). Stopping it (context manager exit, ``atexit``, SIGINT/SIGTERM, or an
error during start) kills the server and removes the temp dir.

>>> with ThrowawayServer() as server:                     # doctest: +SKIP
...     server.dsn("postgres")
'host=127.0.0.1 port=54873 dbname=postgres user=postgres'

:func:`resolve_db` implements ``--db auto|none|<dsn>``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
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

ENV_BINDIR = "PG_BINDIR"
ENV_DATABASE_URL = "STRATA_DATABASE_URL"


class DatabaseUnavailable(StrataError):
    """No PostgreSQL could be found, started or reached."""


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
    """Anything that can hand out connection strings: a throwaway server or a user DSN."""

    def dsn(self, dbname: str | None = None, user: str | None = None) -> str: ...

    @property
    def statement_log(self) -> Path | None: ...


@dataclass
class ExternalServer:
    """A server the user runs, reached through an admin DSN (libpq URI or key=value string).

    The DSN's user must be able to create roles and databases (ideally a superuser).
    """

    admin_dsn: str

    def dsn(self, dbname: str | None = None, user: str | None = None) -> str:
        from psycopg.conninfo import make_conninfo

        kwargs: dict[str, Any] = {}
        if dbname is not None:
            kwargs["dbname"] = dbname
        if user is not None:
            kwargs["user"] = user
            kwargs["password"] = None
        return make_conninfo(self.admin_dsn, **kwargs)

    @property
    def statement_log(self) -> Path | None:
        return None

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- cleanup registry

_LIVE: set[ThrowawayServer] = set()
_LIVE_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


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
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):
            previous = signal.getsignal(sig)
            if previous is signal.SIG_IGN:
                continue
            _PREVIOUS_HANDLERS[sig] = previous
            signal.signal(sig, _on_signal)


# --------------------------------------------------------------------------- throwaway server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


class ThrowawayServer:
    """A private PostgreSQL cluster in a temp dir; see the module docstring.

    ``log_statements=True`` sets ``log_statement=all``; the log is :attr:`statement_log`.
    """

    def __init__(
        self,
        bindir: Path | None = None,
        *,
        log_statements: bool = False,
        start_timeout: float = 30.0,
        port_attempts: int = 5,
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
        self.port_attempts = port_attempts
        self.tmpdir: Path | None = None
        self.port: int | None = None
        self.pid: int | None = None
        self.start_seconds: float | None = None
        self._prefix: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None

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
    def running(self) -> bool:
        return self.pid is not None

    def dsn(self, dbname: str | None = None, user: str | None = None) -> str:
        if self.port is None:
            raise DatabaseUnavailable("the throwaway server is not running")
        return (
            f"host=127.0.0.1 port={self.port} dbname={dbname or 'postgres'} "
            f"user={user or SUPERUSER}"
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
            self.tmpdir = Path(tempfile.mkdtemp(prefix="strata-pg-"))
            self.socket_dir.mkdir()
            if pw is not None:
                for p in (self.tmpdir, self.socket_dir):
                    os.chown(p, pw.pw_uid, pw.pw_gid)
            with _LIVE_LOCK:
                _LIVE.add(self)
            self._initdb()
            self._start_postmaster()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - t0
        return self

    def _initdb(self) -> None:
        res = self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "--no-sync",
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            timeout=120,
        )
        if res.returncode != 0:
            raise DatabaseUnavailable(f"initdb failed: {res.stderr.strip() or res.stdout.strip()}")
        # Loopback only: drop everything initdb wrote except local socket and 127.0.0.1/::1.
        hba = self.datadir / "pg_hba.conf"
        hba.write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
        )

    def _start_postmaster(self) -> None:
        last_error = ""
        for _ in range(self.port_attempts):
            port = _free_port()
            args = [
                str(self.bindir / "postgres"),
                "-D",
                str(self.datadir),
                "-p",
                str(port),
                "-k",
                str(self.socket_dir),
            ]
            settings = {
                "listen_addresses": "127.0.0.1",
                "fsync": "off",
                "full_page_writes": "off",
                "synchronous_commit": "off",
                "max_connections": "50",
                "shared_buffers": "32MB",
                "log_min_messages": "warning",
                "TimeZone": "UTC",
                "autovacuum": "off",
                "log_statement": "all" if self.log_statements else "none",
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
            if self._wait_ready(port):
                self.port = port
                self.pid = self._proc.pid
                return
            self._terminate()
            text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            last_error = text.strip()
            if "could not bind" not in text and "already in use" not in text:
                break
            self.log_path.unlink(missing_ok=True)
        raise DatabaseUnavailable(f"could not start PostgreSQL: {last_error[-2000:]}")

    def _wait_ready(self, port: int) -> bool:
        """Wait until postmaster.pid says ``ready`` (or the process exits)."""
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        pidfile = self.datadir / "postmaster.pid"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                lines = pidfile.read_text().splitlines()
                ready = len(lines) >= 8 and lines[7].strip() == "ready"
                if ready and lines[3].strip() == str(port):
                    return True
            time.sleep(0.01)
        return False

    def _terminate(self) -> None:
        """Immediate shutdown (SIGQUIT), then SIGKILL; reap the child."""
        proc = self._proc
        if proc is None:
            return
        for sig, wait in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait)
        self._proc = None

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and remove the temp dir. Idempotent."""
        with _LIVE_LOCK:
            _LIVE.discard(self)
        self._terminate()
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
        return f"ThrowawayServer(port={self.port}, dir={self.tmpdir})"


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
