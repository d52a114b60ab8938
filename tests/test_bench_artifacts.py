"""Run artifacts: every artifact a trace record names is stored once under artifacts/ and
read back checked against its digest (what baselines and exports re-run over)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policystrata.bench.artifacts import KINDS, ArtifactStore, artifact_path
from policystrata.errors import InputError
from tests.conftest import seeded_copy


@pytest.fixture(scope="module")
def run_dir(seeded_no_minimize_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """support_saas's seeded run without minimization (built once for the test run)."""
    return seeded_copy(seeded_no_minimize_run, tmp_path_factory, "seeded")


def test_every_named_artifact_is_stored_and_matches_its_digest(run_dir: Path) -> None:
    store = ArtifactStore(run_dir)
    records = [json.loads(line) for line in (run_dir / "traces.jsonl").open()]
    judged = [r for r in records if r.get("artifacts")]
    assert len(judged) >= 60
    for rec in judged:
        assert set(rec["artifacts"]) == set(KINDS)
        assert set(rec["reference_artifacts"]) == set(KINDS)
        arts = store.all(rec["artifacts"])
        ref = store.all(rec["reference_artifacts"])
        assert arts is not None and ref is not None
        assert arts["sql"]["sql"] == rec["compiled_sql"]
        changed = {k for k in KINDS if rec["artifacts"][k] != rec["reference_artifacts"][k]}
        assert changed == set(rec.get("changed", [])), rec["task"]


def test_an_edited_artifact_is_an_input_error_naming_the_file(
    run_dir: Path, tmp_path: Path
) -> None:
    rec = json.loads((run_dir / "traces.jsonl").open().readline())
    digest = rec["artifacts"]["sql"]
    path = tmp_path / artifact_path("sql", digest)
    path.parent.mkdir(parents=True)
    data = json.loads((run_dir / artifact_path("sql", digest)).read_text())
    data["value"]["sql"] += " "
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as err:
        ArtifactStore(tmp_path).get("sql", digest)
    assert digest in str(err.value) and str(path) in str(err.value.file)
    with pytest.raises(InputError, match="missing artifact"):
        ArtifactStore(tmp_path).get("ddl", rec["artifacts"]["ddl"])
