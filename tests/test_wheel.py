"""The wheel ships rules, grammars and domains: build it, install it into a fresh venv outside
the checkout, and run `strata check` from there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is required to build the wheel")
    out = tmp_path_factory.mktemp("dist")
    proc = _run([uv, "build", "--wheel", "--out-dir", str(out), str(ROOT)], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    wheels = list(out.glob("policystrata-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_contains_rules_grammars_domains(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for rule in sorted((ROOT / "rules").glob("*.dl")):
        assert f"policystrata/_data/rules/{rule.name}" in names
    for grammar in sorted((ROOT / "grammars").glob("*.lark")):
        assert f"policystrata/_data/grammars/{grammar.name}" in names
    assert "policystrata/_data/domains/support_saas/policy.yaml" in names
    assert "policystrata/_data/domains/support_saas/schema.sql" in names


def test_installed_wheel_runs_check(wheel: Path, tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv is not None
    venv = tmp_path / "venv"
    proc = _run([uv, "venv", "--python", sys.executable, str(venv)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    py = venv / "bin" / "python"
    proc = _run([uv, "pip", "install", "--python", str(py), str(wheel)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    strata = venv / "bin" / "strata"
    base = [
        str(strata),
        "check",
        "--domain",
        "support_saas",
        "--principal",
        "acme_analyst",
        "--ir",
        "ticket_count by region during last_month limit 100",
        "--sql",
    ]
    good = (
        "select count(distinct support_tickets.id) as value, accounts.region from accounts "
        "join support_tickets on support_tickets.account_id = accounts.id "
        "where accounts.tenant_id = 'acme' and support_tickets.opened_at >= date '2026-05-01' "
        "and support_tickets.opened_at < date '2026-06-01' group by accounts.region limit 100"
    )
    bad = good.replace("accounts.tenant_id = 'acme' and ", "")
    ok = _run([*base, good], cwd=tmp_path, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    fail = _run([*base, bad], cwd=tmp_path, env=env)
    assert fail.returncode == 1, fail.stdout + fail.stderr
    assert "tenant" in fail.stdout
