"""Paths stay where they belong: the scan config's ``domain:`` is a built-in name or a directory
inside the config's directory, and nothing it names may lead out of it (absolute paths, ``..``,
paths resolved against the working directory, symlinks out, NUL bytes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from policystrata.cli import main
from policystrata.paths import domains_dir


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``cfg/`` (the config's directory, with a domain copy ``cfg/dom``) and ``outside/dom``
    (a domain the config must not reach); the working directory is their parent."""
    (tmp_path / "cfg").mkdir()
    (tmp_path / "outside").mkdir()
    for where in ("cfg/dom", "outside/dom"):
        shutil.copytree(domains_dir() / "support_saas", tmp_path / where)
    record = {"id": "a", "principal": "acme_analyst", "sql": "select 1"}
    (tmp_path / "cfg" / "t.jsonl").write_text(json.dumps(record) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def scan(layout: Path, domain: str) -> tuple[int, list[str]]:
    cfg = layout / "cfg" / "policystrata.yaml"
    cfg.write_text(f"version: 1\ndomain: {domain}\nsql_traces: {{files: [t.jsonl]}}\n")
    result = CliRunner().invoke(main, ["scan", "--config", str(cfg), "--db", "none"])
    return result.exit_code, [ln for ln in result.stderr.splitlines() if ln.startswith("error")]


def test_a_builtin_name_and_a_directory_inside_the_config_work(layout: Path) -> None:
    assert scan(layout, "support_saas")[0] == 1  # scanned: `select 1` is a finding
    assert scan(layout, "dom")[0] == 1
    assert scan(layout, "./dom")[0] == 1


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("ABSOLUTE", "leaves the config directory"),
        ("../outside/dom", "leaves the config directory"),
        ("outside/dom", "unknown domain 'outside/dom'"),  # exists relative to cwd only
        ('"dom\\0x"', "the path contains a NUL byte"),
    ],
)
def test_a_domain_outside_the_config_directory_is_refused(
    layout: Path, domain: str, message: str
) -> None:
    domain = domain.replace("ABSOLUTE", str(layout / "outside" / "dom"))
    code, errors = scan(layout, domain)
    assert code == 2
    [line] = errors
    assert line.startswith("error: policystrata.yaml:2: domain: ") and message in line


@pytest.mark.parametrize("target", ["/etc/passwd", "../../outside/dom/seed.sql"])
def test_a_symlink_out_of_the_config_directory_in_the_domain_is_refused(
    layout: Path, target: str
) -> None:
    seed = layout / "cfg" / "dom" / "seed.sql"
    seed.unlink()
    seed.symlink_to(target)
    code, errors = scan(layout, "dom")
    assert code == 2
    assert errors == [
        "error: policystrata.yaml:2: domain: seed.sql in the domain is a symlink out of the "
        "config directory"
    ]


def test_a_symlink_that_stays_inside_is_fine(layout: Path) -> None:
    (layout / "cfg" / "shared.sql").write_text((layout / "cfg" / "dom" / "seed.sql").read_text())
    seed = layout / "cfg" / "dom" / "seed.sql"
    seed.unlink()
    seed.symlink_to("../shared.sql")
    assert scan(layout, "dom")[0] == 1


def test_domain_path_and_other_paths_are_confined_too(layout: Path) -> None:
    cfg = layout / "cfg" / "policystrata.yaml"
    cfg.write_text(
        "version: 1\ndomain_path: ../outside/dom\nsql_traces: {files: [../outside/t.jsonl]}\n"
    )
    result = CliRunner().invoke(main, ["scan", "--config", str(cfg), "--db", "none"])
    assert result.exit_code == 2
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error")]
    assert errors == [
        "error: policystrata.yaml:2: domain_path: path '../outside/dom' leaves the config "
        "directory",
        "error: policystrata.yaml:3: sql_traces.files[0]: path '../outside/t.jsonl' leaves the "
        "config directory",
    ]


def test_published_paths_may_leave_the_config_directory_but_not_the_work_tree(
    layout: Path,
) -> None:
    """The published line lets domain_path, database.schema/seed and output use ``..``: inside a
    git work tree they may reach anywhere in it (a published config says
    ``schema: ../../src/app/schema.sql``), never outside it; traces and dbt files stay in the
    config's directory."""
    repo = layout / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "ci" / "scan").mkdir(parents=True)
    shutil.copytree(domains_dir() / "support_saas", repo / "src" / "dom")
    (repo / "ci" / "scan" / "t.jsonl").write_text((layout / "cfg" / "t.jsonl").read_text())
    cfg = repo / "ci" / "scan" / "policystrata.yaml"

    def run(extra: str) -> tuple[int, list[str]]:
        cfg.write_text(
            "version: 1\ndomain: support_saas\ndomain_path: ../../src/dom\n"
            "sql_traces: {files: [t.jsonl]}\n" + extra
        )
        result = CliRunner().invoke(main, ["scan", "--config", str(cfg), "--db", "none"])
        return result.exit_code, [ln for ln in result.stderr.splitlines() if ln.startswith("error")]

    code, errors = run("database: {schema: ../../src/dom/schema.sql}\noutput: ../../out\n")
    assert (code, errors) == (1, [])  # scanned: `select 1` is a finding
    assert (repo / "out" / "scan.json").is_file()
    code, errors = run("database: {schema: /etc/passwd}\n")
    assert code == 2
    assert errors == [
        "error: policystrata.yaml:5: database.schema: path '/etc/passwd' leaves the workspace "
        "(repo, the git work tree)"
    ]
    code, errors = run("output: ../../../outside\n")
    assert code == 2 and "output: path '../../../outside' leaves the workspace" in errors[0]
