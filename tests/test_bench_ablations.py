"""Ablations re-run the run's cases with a part of the checker taken away: dropping a rule
file's checks loses exactly the operators those checks caught, and a part that feeds no verdict
changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from policystrata.bench.ablations import ablation_report, ablations
from policystrata.check import load_rules
from policystrata.cli import main
from tests.conftest import seeded_copy

PUBLISHED = (
    "without_lineage",
    "without_release_policy",
    "without_independent_oracle",
    "without_database_containment",
    "without_minimization",
    "without_transition_obligations",
)


@pytest.fixture(scope="module")
def run_dir(seeded_no_minimize_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """support_saas's seeded run without minimization (built once for the test run)."""
    return seeded_copy(seeded_no_minimize_run, tmp_path_factory, "seeded")


def test_every_published_ablation_that_applies_is_defined() -> None:
    names = [a.name for a in ablations(load_rules())]
    assert all(n in names for n in PUBLISHED)
    assert "without_policy_version" not in names  # versions never reach the detector
    assert "without_rules:manifest.dl" in names and "without_compiler_responsibilities" in names


def test_ablations_lose_what_they_take_away(run_dir: Path) -> None:
    rep = ablation_report(
        run_dir,
        "support_saas",
        only=(
            "without_rules:manifest.dl",
            "without_database_containment",
            "without_transition_obligations",
            "without_minimization",
        ),
    )
    full = rep["full"]
    assert full["kill_rate"] == 1.0 and full["localization_accuracy"] == 1.0
    ab = rep["ablations"]
    manifest = ab["without_rules:manifest.dl"]
    assert manifest["operators_no_longer_killed"] == [
        "manifest_omits_allowed_metric",
        "stale_metric_alias_manifest",
    ]
    assert manifest["kill_rate_change"] < 0 and manifest["dropped_rules"] > 0
    lost = ab["without_database_containment"]["operators_no_longer_killed"]
    assert {"db_rls_old_ownership_field", "app_deny_missing_db_policy"} <= set(lost)
    # the transition obligations feed no verdict (documented): nothing changes
    ob = ab["without_transition_obligations"]
    assert ob["kill_rate_change"] == 0.0 and ob["operators_no_longer_killed"] == []
    # minimization does not change what is killed, only how big a witness is
    mini = ab["without_minimization"]
    assert mini["kill_rate_change"] == 0.0
    assert mini["median_witness_facts"] > full["median_witness_facts"]


def test_cli_ablations_and_a_run_whose_suite_changed(run_dir: Path, tmp_path: Path) -> None:
    cli = CliRunner()
    out = tmp_path / "a.json"
    res = cli.invoke(
        main,
        [
            *("ablations", str(run_dir), "--only", "without_rules:release.dl"),
            *("--format", "json", "--out", str(out)),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert list(data["runs"][run_dir.name]["ablations"]) == ["without_rules:release.dl"]
    res = cli.invoke(main, ["ablations", str(run_dir), "--only", "without_everything"])
    assert res.exit_code == 2 and "unknown ablation" in res.output
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    lines = (other / "traces.jsonl").read_text().splitlines()
    (other / "traces.jsonl").write_text("\n".join(lines[1:]) + "\n")
    res = cli.invoke(main, ["ablations", str(other), "--only", "without_lineage"])
    assert res.exit_code == 2 and "tasks differ" in res.output
