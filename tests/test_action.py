"""The GitHub Action (action.yml): its published inputs and outputs, its docs, and its shell steps
run locally against scaffolded scans, with GITHUB_OUTPUT / GITHUB_STEP_SUMMARY / GITHUB_PATH
pointed at temporary files.

The `uses:` step (astral-sh/setup-uv) is GitHub's; uv is already here. Every `run:` step is
executed as the runner would: `bash -e` in the workspace, with the step's `env:` after replacing
the `${{ ... }}` expressions the action uses (and no others: an unknown expression fails).
"""

from __future__ import annotations

import doctest
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
DOCS = ROOT / "docs" / "github-action.md"
HELPER = ROOT / "action" / "policystrata_action.py"

#: The published inputs (COMPAT §9) with their defaults, and the published outputs.
PUBLISHED_INPUTS = {
    "config": "policystrata.yaml",
    "out": "runs/policystrata",
    "python-version": "3.12",
    "package": "",
    "extra-args": "",
}
PUBLISHED_OUTPUTS = {"out", "exit-code"}

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _action() -> dict[str, Any]:
    return yaml.safe_load(ACTION.read_text(encoding="utf-8"))


def _helper() -> Any:
    spec = importlib.util.spec_from_file_location("policystrata_action", HELPER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["policystrata_action"] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- action.yml and docs


def test_inputs_and_outputs_are_the_published_ones() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    assert set(inputs) == set(PUBLISHED_INPUTS)
    for name, default in PUBLISHED_INPUTS.items():
        assert str(inputs[name].get("default", "")) == default, name
        assert inputs[name].get("required", False) is False, name
        assert inputs[name]["description"].strip(), name
    outputs = action["outputs"]
    assert set(outputs) >= PUBLISHED_OUTPUTS
    for name, spec in outputs.items():
        assert EXPR.fullmatch(spec["value"].strip()), name
        assert spec["description"].strip(), name


def _doc_table(heading: str) -> list[list[str]]:
    """The rows of the first Markdown table under ``## heading`` (cells stripped)."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_docs_list_every_input_with_its_default() -> None:
    rows = _doc_table("Inputs")
    documented = {row[0].strip("`"): row[1] for row in rows}
    inputs = _action()["inputs"]
    assert set(documented) == set(inputs)
    for name, spec in inputs.items():
        default = str(spec.get("default", ""))
        assert documented[name] == (f"`{default}`" if default else "(empty)"), name


def test_docs_list_every_output() -> None:
    documented = {row[0].strip("`") for row in _doc_table("Outputs")}
    assert documented == set(_action()["outputs"])


def _doc_workflow() -> dict[str, Any]:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    return yaml.safe_load(blocks[0])


def test_docs_workflow_uses_only_declared_inputs_and_outputs() -> None:
    workflow = _doc_workflow()
    action = _action()
    assert workflow["permissions"]["security-events"] == "write"
    steps = workflow["jobs"]["scan"]["steps"]
    ours = [s for s in steps if s.get("with", {}).get("config")]
    assert len(ours) == 1
    step = ours[0]
    assert set(step["with"]) <= set(action["inputs"])
    text = json.dumps(steps)
    used = set(re.findall(rf"steps\.{step['id']}\.outputs\.([\w-]+)", text))
    assert used and used <= set(action["outputs"])
    by_action = {s.get("uses", "").split("@")[0]: s for s in steps}
    sarif = by_action["github/codeql-action/upload-sarif"]
    artifact = by_action["actions/upload-artifact"]
    for upload in (sarif, artifact):
        assert upload["if"].startswith("always()"), upload  # they run when the gate fails
    assert "steps.strata.outputs.sarif" in sarif["with"]["sarif_file"]
    baseline = next(s for s in steps if s.get("id") == "baseline")
    assert "--baseline baseline/scan.json" in baseline["run"]
    assert "steps.baseline.outputs.args" in step["with"]["extra-args"]


def test_run_steps_take_inputs_through_the_environment() -> None:
    """No `${{ }}` inside a `run:` script (GitHub splices those into the script's text: quoting
    bugs and injection); every run step calls one subcommand of action/run.sh."""
    script = (ROOT / "action" / "run.sh").read_text(encoding="utf-8")
    subcommands = set(re.search(r"^(install \| .*)\) ", script, flags=re.M)[1].split(" | "))
    called = []
    for step in _action()["runs"]["steps"]:
        if "uses" in step:
            assert step["uses"].startswith("astral-sh/setup-uv@"), step
            continue
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], step["name"]
        m = re.fullmatch(r'bash "\$PS_ACTION_PATH/action/run\.sh" (\w+)', step["run"].strip())
        assert m, step["run"]
        called.append(m[1])
    assert called == ["install", "postgres", "scan"]
    assert set(called) == subcommands


def test_helper_docstring_examples() -> None:
    result = doctest.testmod(_helper(), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# --------------------------------------------------------------------------- the helper


def test_database_need() -> None:
    h = _helper()
    db = {"version": 1, "database": {"schema": "domain/schema.sql"}}
    assert h.database_need(db, [])[0] is True
    assert h.database_need(db, ["--db", "none"]) == (False, "--db none")
    assert h.database_need(db, ["--db=postgresql://u@h/d"])[0] is False
    assert h.database_need({"version": 1}, [])[0] is False
    assert h.database_need({"version": 1}, ["--db", "auto"])[0] is True
    assert h.database_need({"database": None}, [])[0] is False
    assert h.database_need({"database": {"admin_url": "postgresql://x/y"}}, [])[0] is False
    assert h.database_need(None, [])[0] is False  # an empty file: the scan reports it
    assert h.database_need(db, ["--db", "none", "--db", "auto"])[0] is True  # the last one wins


@given(st.lists(st.text(alphabet=st.characters(exclude_characters="\x00"), max_size=12)))
def test_split_args_reads_what_a_shell_would_quote(args: list[str]) -> None:
    """Any argument list, quoted for a shell, splits back into exactly those arguments."""
    import shlex

    assert _helper().split_args(shlex.join(args)) == args


_segment = st.text(alphabet="abc._- ", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)


@given(
    st.lists(_segment, min_size=1, max_size=3).map("/".join),
    st.lists(_segment, min_size=1, max_size=3).map("/".join),
)
def test_github_paths_put_config_relative_paths_under_the_config_dir(prefix: str, uri: str) -> None:
    import posixpath

    loc = {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"}}
    out = _helper().github_paths({"locations": [loc]}, prefix)
    new = out["locations"][0]["artifactLocation"]["uri"]
    assert new == posixpath.normpath(f"{prefix}/{uri}")
    assert (new + "/").startswith(posixpath.normpath(prefix) + "/")
    assert loc["artifactLocation"]["uri"] == uri  # the input is not modified


def test_find_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = _helper()
    monkeypatch.delenv("PG_BINDIR", raising=False)
    monkeypatch.setattr(h.shutil, "which", lambda name: None)
    assert h.find_postgres(tmp_path) is None
    for version in ("9.6", "16", "15"):
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        for name in ("initdb", "pg_ctl", "postgres"):
            (bindir / name).write_text("")
    (tmp_path / "16" / "bin" / "postgres").unlink()  # incomplete: not a server
    assert h.find_postgres(tmp_path) == tmp_path / "15" / "bin"
    monkeypatch.setenv("PG_BINDIR", str(tmp_path / "9.6" / "bin"))
    assert h.find_postgres(tmp_path) == tmp_path / "9.6" / "bin"


def test_github_paths_leave_other_locations_alone() -> None:
    h = _helper()
    doc = {
        "runs": [
            {
                "results": [
                    {
                        "locations": [
                            {"artifactLocation": {"uri": "a/../t.jsonl", "uriBaseId": "%SRCROOT%"}},
                            {"artifactLocation": {"uri": "rules/tenancy.dl"}},
                            {"artifactLocation": {"uri": "file:///x", "uriBaseId": "%SRCROOT%"}},
                        ]
                    }
                ]
            }
        ]
    }
    out = h.github_paths(doc, "ci")["runs"][0]["results"][0]["locations"]
    assert [loc["artifactLocation"]["uri"] for loc in out] == [
        "ci/t.jsonl",
        "rules/tenancy.dl",
        "file:///x",
    ]
    assert h.github_paths(doc, ".") == doc


def test_summary_is_cut_below_githubs_limit(tmp_path: Path) -> None:
    h = _helper()
    report = tmp_path / "report.md"
    report.write_text("## PolicyStrata scan\n" + "| é row |\n" * 200_000, encoding="utf-8")
    text = h.summary_text(report, 1)
    assert len(text.encode("utf-8")) <= h.SUMMARY_LIMIT + 200
    assert text.startswith("## PolicyStrata scan\n")
    assert "truncated" in text.splitlines()[-1]
    assert "| é row |\n\n" in text  # cut at a line boundary
    assert "exit 2" in h.summary_text(None, 2)


# --------------------------------------------------------------------------- the steps, run locally


@dataclass
class StepsRun:
    exit_code: int
    outputs: dict[str, str]
    summary: str
    log: str
    path_added: list[str] = field(default_factory=list)


def _parse_github_output(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line!r}"
        out[key] = value
    return out


@pytest.fixture(scope="module")
def run_action(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., StepsRun]:
    """Run the action's steps as a runner would; one runner temp dir (so one venv) per module."""
    if shutil.which("uv") is None:
        pytest.fail("uv is required (the action installs PolicyStrata with it)")
    runner_temp = tmp_path_factory.mktemp("runner_temp")
    action = _action()

    def run(workspace: Path, **with_: str) -> StepsRun:
        inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
        inputs["python-version"] = sys.executable  # the runner would download 3.12; not here
        inputs.update(with_)
        files = {
            name: workspace.parent / f"{workspace.name}.{name.lower()}"
            for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_PATH")
        }
        for f in files.values():
            f.write_text("")
        context = {"github.action_path": str(ROOT), "runner.temp": str(runner_temp)}
        context.update({f"inputs.{k}": v for k, v in inputs.items()})

        def expand(value: str) -> str:
            def sub(m: re.Match[str]) -> str:
                assert m[1] in context, f"expression the test does not know: {m[1]}"
                return context[m[1]]

            return EXPR.sub(sub, value)

        base_env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        base_env.update({k: str(v) for k, v in files.items()})
        base_env["GITHUB_WORKSPACE"] = str(workspace)
        base_env["RUNNER_TEMP"] = str(runner_temp)
        step_outputs: dict[str, dict[str, str]] = {}
        log = []
        code = 0
        for step in action["runs"]["steps"]:
            if "uses" in step:
                continue
            env = dict(base_env)
            env.update({k: expand(str(v)) for k, v in step.get("env", {}).items()})
            before = files["GITHUB_OUTPUT"].read_text(encoding="utf-8")
            proc = subprocess.run(
                ["bash", "-e", "-c", step["run"]],
                cwd=workspace,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            log.append(f"## {step['name']} -> {proc.returncode}\n{proc.stdout}{proc.stderr}")
            written = files["GITHUB_OUTPUT"].read_text(encoding="utf-8")[len(before) :]
            if "id" in step:
                step_outputs[step["id"]] = _parse_github_output(written)
            code = proc.returncode
            if code != 0:
                break  # a failing step ends the composite action (and the job)
        for sid, outs in step_outputs.items():
            context.update({f"steps.{sid}.outputs.{k}": v for k, v in outs.items()})
        outputs = {}
        for name, spec in action["outputs"].items():
            outputs[name] = EXPR.sub(lambda m: context.get(m[1], ""), spec["value"])
        return StepsRun(
            exit_code=code,
            outputs=outputs,
            summary=files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8"),
            log="\n".join(log),
            path_added=files["GITHUB_PATH"].read_text(encoding="utf-8").splitlines(),
        )

    return run


def _scaffold(workspace: Path, *args: str) -> Path:
    """`strata init-scan` into <workspace>/ci/policystrata; returns the scan directory."""
    workspace.mkdir(parents=True, exist_ok=True)
    target = workspace / "ci" / "policystrata"
    cmd = [sys.executable, "-m", "policystrata", "init-scan", *args, "--out", str(target)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return target


def _drop_tenant_filter(traces: Path) -> None:
    """Append a copy of the first record whose SQL lost its tenant predicates."""
    first = json.loads(traces.read_text(encoding="utf-8").splitlines()[0])
    sql = re.sub(r"\w+\.tenant_id = 'acme' and ", "", first["sql"])
    assert sql != first["sql"]
    first.update(id="dropped_tenant_filter", sql=sql)
    with traces.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(first) + "\n")


def _sarif_schema() -> dict[str, Any]:
    return json.loads((ROOT / "tests" / "schemas" / "sarif-2.1.0.json").read_text("utf-8"))


def _result_uris(sarif: dict[str, Any]) -> list[str]:
    return [
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for run in sarif["runs"]
        for result in run["results"]
        for loc in result.get("locations", [])
    ]


@pytest.mark.slow
def test_clean_scan_passes_with_summary_outputs_and_sarif(
    run_action: Callable[..., StepsRun], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    _scaffold(ws)
    res = run_action(ws, config="ci/policystrata/policystrata.yaml")
    assert res.exit_code == 0, res.log
    assert res.outputs == {
        "out": "runs/policystrata",
        "exit-code": "0",
        "sarif": "runs/policystrata/scan.sarif",
    }
    assert res.summary.startswith("## PolicyStrata scan:"), res.summary
    assert "passed" in res.summary.splitlines()[0]
    assert res.summary == (ws / "runs/policystrata/report.md").read_text(encoding="utf-8")
    assert len(res.path_added) == 1 and (Path(res.path_added[0]) / "strata").is_file()
    sarif = json.loads((ws / res.outputs["sarif"]).read_text(encoding="utf-8"))
    jsonschema.validate(sarif, _sarif_schema())
    assert "not needed: the config has no database section" in res.log


@pytest.mark.slow
def test_gate_failure_exits_1_and_sarif_paths_resolve_from_the_repository_root(
    run_action: Callable[..., StepsRun], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    scan_dir = _scaffold(ws)
    _drop_tenant_filter(scan_dir / "traces.jsonl")
    res = run_action(ws, config="ci/policystrata/policystrata.yaml", out="out dir")
    assert res.exit_code == 1, res.log
    assert res.outputs["exit-code"] == "1"
    assert res.outputs["out"] == "out dir"
    assert "failed" in res.summary.splitlines()[0]
    assert "compiler.tenant_scope_missing" in res.summary
    sarif = json.loads((ws / res.outputs["sarif"]).read_text(encoding="utf-8"))
    jsonschema.validate(sarif, _sarif_schema())
    uris = _result_uris(sarif)
    assert uris
    for uri in uris:
        assert uri.startswith("ci/policystrata/"), uri
        assert (ws / uri).is_file(), uri
    # The same findings, now against a baseline that already has them (a path with a space,
    # quoted in extra-args): nothing new, the gate passes.
    baseline = tmp_path / "main scan"
    baseline.mkdir()
    shutil.copy(ws / "out dir" / "scan.json", baseline / "scan.json")
    again = run_action(
        ws,
        config="ci/policystrata/policystrata.yaml",
        out="with-baseline",
        **{"extra-args": f"--baseline '{baseline / 'scan.json'}'"},
    )
    assert again.exit_code == 0, again.log
    assert again.outputs["exit-code"] == "0"
    assert "baseline" in again.log


@pytest.mark.slow
def test_input_errors_exit_2_with_a_summary(
    run_action: Callable[..., StepsRun], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    scan_dir = _scaffold(ws)
    missing = run_action(ws, config="ci/nowhere.yaml")
    assert missing.exit_code == 2, missing.log
    assert missing.outputs == {"out": "runs/policystrata", "exit-code": "2", "sarif": ""}
    assert "exit 2 (usage, input or internal error)" in missing.summary
    assert "scan config not found" in missing.log

    (scan_dir / "broken.yaml").write_text("version: 1\nsql_traces: {files: [traces.jsonl]\n")
    broken = run_action(ws, config="ci/policystrata/broken.yaml")
    assert broken.exit_code == 2, broken.log
    assert "broken.yaml" in broken.log

    quotes = run_action(
        ws, config="ci/policystrata/policystrata.yaml", **{"extra-args": "--baseline 'x"}
    )
    assert quotes.exit_code == 2, quotes.log
    assert "extra-args: No closing quotation" in quotes.log
    assert quotes.outputs["exit-code"] == "2"

    # A stale report from an earlier run in the same output directory is not the summary.
    ok = run_action(ws, config="ci/policystrata/policystrata.yaml", out="reused")
    assert ok.exit_code == 0, ok.log
    stale = run_action(ws, config="ci/nowhere.yaml", out="reused")
    assert stale.exit_code == 2
    assert stale.outputs["sarif"] == ""
    assert "The scan wrote no report" in stale.summary


def test_postgres_step_installs_the_server_when_binaries_are_absent(tmp_path: Path) -> None:
    """With a database in the config and no server binaries anywhere, the step runs
    `apt-get update` and `apt-get install postgresql` (a stand-in apt-get records the calls)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("dirname", "id", "env"):
        found = shutil.which(tool)
        assert found
        (bindir / tool).symlink_to(found)
    calls = tmp_path / "apt-calls"
    fake_apt = bindir / "apt-get"
    fake_apt.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake_apt.chmod(0o755)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    config = tmp_path / "policystrata.yaml"
    config.write_text("version: 1\ndatabase: {schema: schema.sql}\n")
    env = {
        "PATH": str(bindir),
        "PS_VENV": str(venv),
        "PS_CONFIG": str(config),
        "PS_POSTGRES_ROOT": str(tmp_path / "no-postgres"),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),  # PyYAML for the helper
    }
    bash = shutil.which("bash")
    assert bash
    script = str(ROOT / "action" / "run.sh")
    proc = subprocess.run([bash, script, "postgres"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines() == [
        "update -q",
        "install -y -q --no-install-recommends postgresql",
    ]
    env["PS_EXTRA_ARGS"] = "--db none"
    calls.unlink(missing_ok=True)
    proc = subprocess.run([bash, script, "postgres"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "not needed: --db none" in proc.stderr
    assert not calls.exists()


@pytest.mark.slow
@pytest.mark.postgres
def test_database_scan_uses_the_throwaway_server(
    run_action: Callable[..., StepsRun], tmp_path: Path
) -> None:
    from policystrata.db.server import find_bindir

    if find_bindir() is None:
        if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
            pytest.fail("CI=true and no PostgreSQL server binaries")
        pytest.skip("no PostgreSQL server binaries")
    ws = tmp_path / "ws"
    _scaffold(ws, "postgres_dbt")
    res = run_action(ws, config="ci/policystrata/policystrata.clean.yaml")
    assert "found PostgreSQL server binaries in" in res.log
    assert res.exit_code == 0, res.log
    summary = json.loads((ws / "runs/policystrata/summary.json").read_text(encoding="utf-8"))
    assert summary["evidence_exercised"]["real_db"]["ran"] is True, summary
