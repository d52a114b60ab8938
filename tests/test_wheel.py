"""Install like users do: build the wheel, then run it with no source tree in sight.

- the wheel ships every rule, grammar and domain file (force-include in pyproject.toml);
- ``uvx --from dist/policystrata-*.whl strata demo`` works from an empty directory;
- a venv with the wheel installed (the pipx-style install) runs ``init-scan`` + ``scan``,
  ``check`` and ``python -m policystrata`` from an empty directory, and reads its rules from the
  installed package, not from this checkout;
- ``uv run`` in the checkout prints nothing of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

GOOD_SQL = (
    "select count(distinct support_tickets.id) as value, accounts.region from accounts "
    "join support_tickets on support_tickets.account_id = accounts.id "
    "where accounts.tenant_id = 'acme' and support_tickets.opened_at >= date '2026-05-01' "
    "and support_tickets.opened_at < date '2026-06-01' group by accounts.region limit 100"
)
BAD_SQL = GOOD_SQL.replace("accounts.tenant_id = 'acme' and ", "")


def _run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is required to build and install the wheel")
    return uv


def _clean_env() -> dict[str, str]:
    """The environment without this checkout's venv, so nothing resolves to the source tree."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT")
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = _run([_uv(), "build", "--wheel", "--out-dir", str(out), str(ROOT)], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    wheels = list(out.glob("policystrata-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (what ``pipx install`` makes)."""
    base = tmp_path_factory.mktemp("venv")
    venv = base / "venv"
    proc = _run([_uv(), "venv", "--python", sys.executable, str(venv)], cwd=base)
    assert proc.returncode == 0, proc.stderr
    proc = _run(
        [_uv(), "pip", "install", "--python", str(venv / "bin" / "python"), str(wheel)], cwd=base
    )
    assert proc.returncode == 0, proc.stderr
    return venv


def _shipped(folder: str) -> set[str]:
    src = ROOT / folder
    return {
        f"policystrata/_data/{folder}/{p.relative_to(src).as_posix()}"
        for p in src.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_wheel_contains_rules_grammars_domains(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("rules", "grammars", "domains"):
        expected = _shipped(folder)
        assert expected, folder
        assert expected <= names, sorted(expected - names)
    assert "policystrata/__main__.py" in names
    templates = ROOT / "policystrata" / "scan" / "templates"
    for path in templates.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            assert path.relative_to(ROOT).as_posix() in names


def test_uvx_demo_from_an_empty_directory(wheel: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "empty"
    cwd.mkdir()
    uvx = [_uv(), "tool", "run", "--python", sys.executable, "--from", str(wheel)]
    where = _run([*uvx, "python", "-c", _WHERE], cwd=cwd, env=_clean_env())
    assert where.returncode == 0, where.stderr
    for line in where.stdout.splitlines():
        assert not Path(line).resolve().is_relative_to(ROOT), line
    demo = _run([*uvx, "strata", "demo"], cwd=cwd, env=_clean_env())
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "witness" in demo.stdout
    run = cwd / "runs" / "demo"
    assert isinstance(json.loads((run / "summary.json").read_text(encoding="utf-8")), dict)
    witnesses = sorted((run / "witnesses").glob("*.json"))
    assert witnesses, "the demo found no fault"
    # A saved witness re-verifies with the installed package's rules.
    explain = _run([*uvx, "strata", "explain", str(witnesses[0])], cwd=cwd, env=_clean_env())
    assert explain.returncode == 0, explain.stdout + explain.stderr
    assert "proof" in explain.stdout


_WHERE = "import policystrata, policystrata.paths as p; print(policystrata.__file__); " + (
    "print(p.rules_dir()); print(p.grammars_dir()); print(p.domains_dir())"
)


def test_installed_package_reads_its_own_data(venv: Path, tmp_path: Path) -> None:
    proc = _run([str(venv / "bin" / "python"), "-c", _WHERE], cwd=tmp_path, env=_clean_env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 4
    for line in lines:
        assert Path(line).resolve().is_relative_to(venv.resolve()), line
    for line in lines[1:]:
        assert "_data" in Path(line).parts, line


def test_installed_init_scan_then_scan(venv: Path, tmp_path: Path) -> None:
    strata = str(venv / "bin" / "strata")
    env = _clean_env()
    init = _run([strata, "init-scan", "--out", "scan"], cwd=tmp_path, env=env)
    assert init.returncode == 0, init.stderr
    config = tmp_path / "scan" / "policystrata.yaml"
    assert config.is_file()
    clean = _run([strata, "scan", "--config", str(config), "--out", "out"], cwd=tmp_path, env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    for name in ("scan.json", "findings.jsonl", "summary.json", "report.md", "scan.sarif"):
        assert (tmp_path / "out" / name).is_file(), name
    result = json.loads((tmp_path / "out" / "scan.json").read_text(encoding="utf-8"))
    # clean: no finding but the fuzz stage's survivors (low, never gating; tests/test_fuzz.py)
    assert [f for f in result["findings"] if f.get("mutation") is None] == []
    assert all(f["advisory"] and not f["gating"] for f in result["findings"])

    # One record that drops the tenant filter: the gate fails, and says where.
    traces = tmp_path / "scan" / "traces.jsonl"
    first = json.loads(traces.read_text(encoding="utf-8").splitlines()[0])
    first["id"] = "dropped_tenant_filter"
    first["sql"] = BAD_SQL
    with traces.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(first) + "\n")
    failing = _run(
        [strata, "scan", "--config", str(config), "--out", "out2"], cwd=tmp_path, env=env
    )
    assert failing.returncode == 1, failing.stdout + failing.stderr
    findings = [
        json.loads(line)
        for line in (tmp_path / "out2" / "findings.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    findings = [f for f in findings if f.get("mutation") is None]  # fuzz survivors: see above
    assert findings
    assert {f["id"].split("/")[0] for f in findings} >= {"compiler.tenant_scope_missing"}
    assert all("dropped_tenant_filter" in f["id"] for f in findings)


@pytest.mark.parametrize("entry", ["strata", "policystrata", "python -m policystrata"])
def test_installed_check(venv: Path, tmp_path: Path, entry: str) -> None:
    if entry == "python -m policystrata":
        cmd = [str(venv / "bin" / "python"), "-m", "policystrata"]
    else:
        cmd = [str(venv / "bin" / entry)]
    base = [
        *cmd,
        "check",
        "--domain",
        "support_saas",
        "--principal",
        "acme_analyst",
        "--ir",
        "ticket_count by region during last_month limit 100",
        *([] if entry == "strata" else ["--db", "none"]),  # `strata`: real rows when it can
        "--sql",
    ]
    ok = _run([*base, GOOD_SQL], cwd=tmp_path, env=_clean_env())
    assert ok.returncode == 0, ok.stdout + ok.stderr
    fail = _run([*base, BAD_SQL], cwd=tmp_path, env=_clean_env())
    assert fail.returncode == 1, fail.stdout + fail.stderr
    assert "tenant_scope_missing" in fail.stdout
    usage = _run([*cmd, "no-such-command"], cwd=tmp_path, env=_clean_env())
    assert usage.returncode == 2
    assert "No such command" in usage.stderr


def test_uv_run_prints_nothing_of_its_own() -> None:
    """`uv run` syncs on every call; with `[tool.uv] compile-bytecode` each sync re-compiled all
    of site-packages and printed "Bytecode compiled N files". A warm call prints nothing."""
    env = _clean_env()
    env.pop("UV_COMPILE_BYTECODE", None)
    cmd = [_uv(), "run", "strata", "--version"]
    warm = _run(cmd, cwd=ROOT, env=env)  # the first call may build the project after an edit
    assert warm.returncode == 0, warm.stderr
    for _ in range(2):
        proc = _run(cmd, cwd=ROOT, env=env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        assert proc.stdout.startswith("strata, version ")
