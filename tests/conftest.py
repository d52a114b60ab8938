"""Shared pytest fixtures.

PostgreSQL (mark such tests ``@pytest.mark.postgres``):

- ``pg_server`` (session): a throwaway server started once per test session (statement logging
  on), or the server at ``$STRATA_DATABASE_URL`` when set. Without PostgreSQL the test is skipped
  with the reason, except under ``CI=true`` where it fails.
- ``pg_cluster`` (session): roles and template databases on that server.
- ``make_db`` (function): ``make_db(schema_sql, seed_sql="")`` returns a fresh database cloned
  from a template of that (schema, seed) text; dropped after the test. Its sessions set
  ``tenant_settings`` (default :data:`TEST_TENANT_SETTINGS`, the setting the test schemas'
  policies read) to the tenant.

The suite runs in parallel (pytest-xdist, ``addopts`` in pyproject.toml): each worker is its own
session, so each starts its own throwaway server. Workers sharing one external server
(``$STRATA_DATABASE_URL``) take turns creating roles and templates (a file lock per URL).

Scheduling: ``--dist loadfile`` hands a worker a whole file at a time, in collection order
(``--no-loadscope-reorder``; xdist's default reorder puts the files with the most tests first,
which left the few-but-long files such as test_perf_parallel.py for the end, one worker running
them alone). :data:`SLOW_FILES` are collected first, longest first, so the short files fill in
behind them on both workers.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from policystrata.db.server import (
    ENV_DATABASE_URL,
    DatabaseUnavailable,
    ExternalServer,
    Server,
    ThrowawayServer,
    find_bindir,
)
from policystrata.db.session import Cluster, Database

#: The files that take longest (measured with ``--durations``), longest first: collected before
#: every other file, which keep their own order. A file missing here only starts later.
SLOW_FILES = (
    "tests/test_perf_parallel.py",
    "tests/test_perf.py",
    "tests/test_action.py",
    "tests/test_finance_runs.py",
    "tests/test_domain_shapes.py",
    "tests/test_bench_reports.py",
    "tests/test_wheel.py",
    "tests/test_bench_ablations.py",
    "tests/test_scan.py",
    "tests/test_finance_domain.py",
    "tests/test_clickhouse.py",
    "tests/test_db_hostile.py",
    "tests/test_engine_memo.py",
    "tests/test_cli_exit_codes.py",
    "tests/test_stack.py",
    "tests/test_dbt.py",
    "tests/test_bench.py",
    "tests/test_scan_memo.py",
    "tests/test_fuzz.py",
)


def pytest_configure(config: pytest.Config) -> None:
    """Let this process and every process it starts write bytecode (see the module docstring).
    Runs in the controller before it starts the xdist workers, so they inherit it."""
    if os.environ.get("STRATA_TEST_BYTECODE", "1") == "0":
        return
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        sys.dont_write_bytecode = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the items of :data:`SLOW_FILES` first, in that order (a stable sort: each file's own
    order, and every other file's, is kept)."""
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


#: The session setting the tests' own schemas (and support_saas's) compare the tenant column with.
#: A database made for a domain gets the settings the rules derive from its DDL instead.
TEST_TENANT_SETTINGS = ("app.tenant_id",)


def _no_postgres(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true and PostgreSQL is unavailable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    url = os.environ.get(ENV_DATABASE_URL)
    if url:
        yield ExternalServer(url)
        return
    if find_bindir() is None:
        _no_postgres(
            "no server binaries (install postgresql, or set PG_BINDIR / STRATA_DATABASE_URL)"
        )
    try:
        server = ThrowawayServer(log_statements=True).start()
    except DatabaseUnavailable as e:
        _no_postgres(str(e))
        raise
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def _shared_server_turn() -> Iterator[None]:
    """Serialize role and template creation among xdist workers sharing an external server."""
    url = os.environ.get(ENV_DATABASE_URL)
    if not url:
        yield
        return
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    lock = Path(tempfile.gettempdir()) / f"strata-pytest-{digest}.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def pg_cluster(pg_server: Server) -> Iterator[Cluster]:
    cluster = Cluster(pg_server)
    try:
        with _shared_server_turn():
            cluster.ensure_roles()
    except DatabaseUnavailable as e:
        _no_postgres(str(e))
    yield cluster
    cluster.drop_templates()


@pytest.fixture
def make_db(pg_cluster: Cluster) -> Iterator[Callable[..., Database]]:
    made: list[Database] = []

    def make(
        schema_sql: str, seed_sql: str = "", tenant_settings: tuple[str, ...] = TEST_TENANT_SETTINGS
    ) -> Database:
        with _shared_server_turn():
            db = pg_cluster.database(schema_sql, seed_sql, tenant_settings=tenant_settings)
        made.append(db)
        return db

    yield make
    for db in made:
        db.drop()


# ---- runs shared by several test files ---------------------------------------------------------


def _run_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]
) -> Path:
    """``build(out)`` done once for the whole test run, whichever xdist worker asks first (the
    others wait on a file lock in the run's shared temp directory, then use its output); the
    directory is only read (a module gets its own copy: :func:`seeded_copy`)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's directory, shared by its workers (each has its own below)
    shared = base / "shared-runs"
    shared.mkdir(exist_ok=True)
    out = shared / name
    with (shared / f"{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if not (shared / f"{name}.done").exists():
                if out.exists():
                    shutil.rmtree(out)  # a build that failed half-way
                build(out)
                (shared / f"{name}.done").write_text("")
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return out


def _seeded_no_minimize(out: Path) -> None:
    from policystrata.bench.runner import Runner, write_run
    from policystrata.bench.suites import resolve_suite
    from policystrata.check import Checker

    checker = Checker.open("support_saas")
    src = resolve_suite(checker.domain, "seeded")
    write_run(Runner(checker, minimize=False), src.cases(), out, {"suite": "seeded"})


@pytest.fixture(scope="session")
def seeded_no_minimize_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``support_saas``'s seeded suite run without minimization (``write_run``, meta
    ``{"suite": "seeded"}``): the run test_bench_ablations, _artifacts, _baselines and
    _random_data read. Built once per test run (it was built once per file); do not write to
    it: :func:`seeded_copy`."""
    return _run_once(tmp_path_factory, "seeded-no-minimize", _seeded_no_minimize)


def seeded_copy(run: Path, tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A module's own copy of a shared run, in ``mktemp(name)``."""
    out = tmp_path_factory.mktemp(name)
    shutil.copytree(run, out, dirs_exist_ok=True)
    return out
