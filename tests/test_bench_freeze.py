"""Freeze and verify: a manifest of digests of everything a benchmark's numbers depend on;
a one-character change in any rule file (or any hashed file) is caught and named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policystrata.bench.freeze import (
    GROUPS,
    created_at,
    freeze_manifest,
    manifest_id,
    verify_manifest,
)
from policystrata.cli import main
from policystrata.model import load_domain
from policystrata.paths import domains_dir, rule_files, rules_dir

RULES = [p.name for p in rule_files()]


@pytest.fixture(scope="module")
def domain():  # type: ignore[no-untyped-def]
    return load_domain("support_saas")


@pytest.fixture(scope="module")
def frozen(domain) -> dict:  # type: ignore[no-untyped-def]
    return freeze_manifest(domain, "generated", count=3, seed=5)


def _one_char_change(text: str, pos: int) -> str:
    pos = pos % len(text)
    new = "x" if text[pos] != "x" else "y"
    return text[:pos] + new + text[pos + 1 :]


def test_manifest_has_the_published_keys_and_a_stable_id(frozen: dict, domain) -> None:  # type: ignore[no-untyped-def]
    for key in (
        "manifest_version",
        "created_at",
        "domain",
        "suite",
        "generated_count",
        "generated_seed",
        "policy_version",
        "surface_versions",
        "suite_metadata",
        "policy_hash",
        "surfaces_hash",
        "suite_hash",
        "task_hash",
        "mutation_operator_hash",
        "detector_hash",
        "generator_hash",
        "package_version",
        "git_commit",
        "benchmark_manifest_id",
    ):
        assert key in frozen, key
    assert frozen["manifest_version"] == "policystrata.benchmark-manifest.v1"
    assert frozen["benchmark_manifest_id"].startswith("psf-")
    assert len(frozen["benchmark_manifest_id"]) == 24
    assert manifest_id(frozen) == frozen["benchmark_manifest_id"]
    assert (frozen["generated_count"], frozen["generated_seed"]) == (3, 5)
    # same inputs: the same manifest, byte for byte
    assert json.dumps(freeze_manifest(domain, "generated", count=3, seed=5)) == json.dumps(frozen)
    assert verify_manifest(frozen, frozen) == []
    assert set(f"rules/{r}" for r in RULES) <= set(frozen["files"]["detector"])


def test_every_rule_file_one_character_changed_is_named(
    frozen: dict,
    domain,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(rules_dir(), rules)
    for name in RULES:
        path = rules / name
        original = path.read_text(encoding="utf-8")
        path.write_text(_one_char_change(original, len(original) // 2), encoding="utf-8")
        current = freeze_manifest(domain, "generated", count=3, seed=5, rules=rules)
        found = verify_manifest(frozen, current)
        assert [m.field for m in found] == ["detector_hash"], name
        assert found[0].files == (f"changed rules/{name}",)
        assert f"rules/{name}" in found[0].line()
        path.write_text(original, encoding="utf-8")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.sampled_from(RULES), pos=st.integers(min_value=0, max_value=10**6))
def test_any_one_character_change_anywhere_in_a_rule_file_is_caught(
    frozen: dict,
    domain,  # type: ignore[no-untyped-def]
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    pos: int,
) -> None:
    rules = tmp_path_factory.mktemp("rules")
    for p in rule_files():
        shutil.copy(p, rules / p.name)
    text = (rules / name).read_text(encoding="utf-8")
    (rules / name).write_text(_one_char_change(text, pos), encoding="utf-8")
    current = freeze_manifest(domain, "generated", count=3, seed=5, rules=rules)
    found = verify_manifest(frozen, current)
    assert [(m.field, m.files) for m in found] == [("detector_hash", (f"changed rules/{name}",))]


def test_code_and_added_files_are_named_by_their_group(
    frozen: dict,
    domain,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    pkg = tmp_path / "policystrata"
    shutil.copytree(
        Path(__file__).resolve().parent.parent / "policystrata",
        pkg,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (pkg / "stack" / "faults.py").write_text(
        (pkg / "stack" / "faults.py").read_text() + "#", encoding="utf-8"
    )
    (pkg / "lower" / "new_pass.py").write_text("", encoding="utf-8")
    current = freeze_manifest(domain, "generated", count=3, seed=5, package=pkg)
    found = {m.field: m.files for m in verify_manifest(frozen, current)}
    assert found == {
        "mutation_operator_hash": ("changed policystrata/stack/faults.py",),
        "detector_hash": ("added policystrata/lower/new_pass.py",),
    }


def test_created_at_is_from_inputs_never_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    assert created_at("2026-01-02T03:04:05+01:00") == "1970-01-02T00:00:00Z"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert created_at("2026-01-02T03:04:05+01:00") == "2026-01-02T02:04:05Z"
    assert created_at(None) == "1970-01-01T00:00:00Z"


def test_cli_freeze_verify_and_a_frozen_run(tmp_path: Path) -> None:
    cli = CliRunner()
    dom = tmp_path / "dom"
    shutil.copytree(domains_dir() / "support_saas", dom)
    m = tmp_path / "m.json"
    args = ["--domain-path", str(dom), "--suite", "generated", "--count", "4", "--seed", "3"]
    res = cli.invoke(main, ["freeze-benchmark", *args, "--out", str(m)])
    assert res.exit_code == 0, res.output
    first = m.read_bytes()
    assert cli.invoke(main, ["freeze-benchmark", *args, "--out", str(m)]).exit_code == 0
    assert m.read_bytes() == first
    res = cli.invoke(main, ["verify-freeze", str(m), "--domain-path", str(dom)])
    assert res.exit_code == 0 and "verified psf-" in res.output, res.output

    # a frozen run: verified, the manifest copied, the freeze fields in metadata.json
    out = tmp_path / "run"
    res = cli.invoke(
        main,
        [
            *("run", "--domain-path", str(dom), "--freeze-manifest", str(m)),
            *("--out", str(out), "--db", "none", "-j", "1", "--no-minimize"),
        ],
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads(first)
    assert (out / "benchmark_manifest.json").read_bytes() == first
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["benchmark_manifest_id"] == manifest["benchmark_manifest_id"]
    assert meta["detector_frozen"] is True
    assert meta["detector_freeze_id"] == manifest["benchmark_manifest_id"]
    assert (meta["generated_count"], meta["generated_seed"]) == (4, 3)
    for field in GROUPS:
        assert meta[field] == manifest[field], field

    # one character of the policy: verify-freeze and the run both refuse, naming it
    policy = dom / "policy.yaml"
    policy.write_text(_one_char_change(policy.read_text(), 40), encoding="utf-8")
    res = cli.invoke(main, ["verify-freeze", str(m), "--domain-path", str(dom)])
    assert res.exit_code == 1
    assert "policy_hash: changed domain/policy.yaml" in res.output
    out2 = tmp_path / "run2"
    res = cli.invoke(
        main,
        ["run", "--domain-path", str(dom), "--freeze-manifest", str(m), "--out", str(out2)],
    )
    assert res.exit_code == 1 and "policy_hash" in res.output and not out2.exists()

    # a manifest edited by hand, and a file that is no manifest
    edited = dict(manifest, generated_seed=4)
    m.write_text(json.dumps(edited))
    res = cli.invoke(main, ["verify-freeze", str(m), "--domain-path", str(dom)])
    assert res.exit_code == 1 and "benchmark_manifest_id" in res.output
    m.write_text("{}")
    res = cli.invoke(main, ["verify-freeze", str(m)])
    assert res.exit_code == 2 and "not a benchmark manifest" in res.output
