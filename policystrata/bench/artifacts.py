"""The artifacts a run judged, stored in the run directory so that other checkers can be run
over them again (``strata baselines``, exports, reports) without re-running the stack.

Each trace record names the artifacts of the stack run the detector judged (``artifacts``:
artifact name -> digest) and those of the fault-free stack for the same request
(``reference_artifacts``: the approved layers' output, what a snapshot or a golden answer is
taken from). The artifacts themselves are written once per distinct content, under
``artifacts/<name>/<digest>.json`` (``{"kind": name, "value": ...}``): a run of 500 cases shares
a handful of manifests, grammars and DDL texts. The digest is the one
:meth:`policystrata.stack.pipeline.StackRun.digests` computes, so a file's name is checked
against its content when it is read.

>>> from policystrata.ir import parse_ir
>>> from policystrata.model import load_domain
>>> from policystrata.stack.pipeline import Request, run_stack
>>> request = Request("acme_analyst", parse_ir("ticket_count limit 5"))
>>> run = run_stack(load_domain("support_saas"), request)
>>> sorted({p.split("/")[1] for p in artifact_blobs(run)})
['cost_estimate', 'ddl', 'grammar', 'manifest', 'release', 'request', 'sql', 'validator']
>>> path, text = next(iter(artifact_blobs(run).items()))
>>> _dir, kind, name = path.split("/")
>>> decode_artifact(text, kind, name[:-5]) == run.artifacts()[kind]
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from policystrata.errors import InputError
from policystrata.stack.pipeline import StackRun, artifact_digest

ARTIFACT_DIR = "artifacts"
KINDS = ("cost_estimate", "ddl", "grammar", "manifest", "release", "request", "sql", "validator")


def artifact_path(kind: str, digest: str) -> str:
    """Where an artifact lives, relative to the run directory."""
    return f"{ARTIFACT_DIR}/{kind}/{digest}.json"


def artifact_blobs(*runs: StackRun | None) -> dict[str, str]:
    """Path -> file text of every artifact of the given stack runs."""
    out: dict[str, str] = {}
    for run in runs:
        if run is None:
            continue
        for kind, value in run.artifacts().items():
            path = artifact_path(kind, artifact_digest(value))
            if path not in out:
                text = json.dumps(
                    {"kind": kind, "value": value}, sort_keys=True, ensure_ascii=False
                )
                out[path] = text + "\n"
    return out


def decode_artifact(text: str, kind: str, digest: str, source: str = "artifact") -> Any:
    """An artifact file's value, checked against its name (kind and digest)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", file=source, line=exc.lineno) from None
    if not isinstance(data, dict) or data.get("kind") != kind or "value" not in data:
        raise InputError(f"not a {kind} artifact", file=source)
    value = data["value"]
    if kind == "sql" and isinstance(value, dict) and value.get("tenants") is not None:
        value["tenants"] = tuple(value["tenants"])
    if artifact_digest(value) != digest:
        raise InputError(
            f"the {kind} artifact does not match its digest {digest} (edited or corrupted)",
            file=source,
        )
    return value


class ArtifactStore:
    """Reads a run directory's artifacts (memoized: runs share most of them)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._memo: dict[tuple[str, str], Any] = {}

    def get(self, kind: str, digest: str | None) -> Any:
        """The artifact, or raises :class:`InputError` naming the missing or corrupted file."""
        if digest is None:
            return None
        key = (kind, digest)
        if key not in self._memo:
            rel = artifact_path(kind, digest)
            path = self.run_dir / rel
            if not path.is_file():
                raise InputError(
                    f"missing artifact {rel} (the run was written before runs stored their "
                    "artifacts, or the directory is incomplete: run it again)",
                    file=str(self.run_dir),
                )
            self._memo[key] = decode_artifact(
                path.read_text(encoding="utf-8"), kind, digest, source=str(path)
            )
        return self._memo[key]

    def all(self, digests: dict[str, str] | None) -> dict[str, Any] | None:
        """Every artifact named by a record's digest map (None when the record has none)."""
        if not digests:
            return None
        return {kind: self.get(kind, digests.get(kind)) for kind in KINDS if kind in digests}
