"""Freeze a benchmark and verify it later: a manifest of digests of everything a run's numbers
depend on (``strata freeze-benchmark``, ``strata verify-freeze``, ``strata run
--freeze-manifest``).

A manifest (``policystrata.benchmark-manifest.v1``, the published keys of COMPAT.md §6) holds,
beside the suite's parameters, seven hashes, each the sha256 of the sorted ``path digest``
lines of one group of files (:data:`GROUPS`), and, ours, every file's own digest under
``files`` (so a mismatch names the file, not only the group):

- ``policy_hash``: the domain's ``policy.yaml``; ``surfaces_hash``: its ``surfaces.yaml``;
  ``domain_hash`` (ours): every other file of the domain directory (``schema.sql``,
  ``seed.sql``, suites...);
- ``suite_hash``: the suite's definition (its file's bytes, or a generated suite's stream,
  count and seed); ``task_hash``: the materialized suite, every case as the runner receives it
  (task id, principal, IR, fault, compiler style, labels, versions);
- ``mutation_operator_hash``: the reference stack and its fault operators (``stack/``);
- ``detector_hash``: the rule files, the grammars and the code that lowers artifacts, evaluates
  the rules and scores a run (:data:`DETECTOR_CODE`), plus extra ``--rules`` files;
- ``generator_hash``: the suite generator and readers (:data:`GENERATOR_CODE`).

``benchmark_manifest_id`` is ``psf-`` and the first 20 hex of the sha256 of the verified fields
(:data:`VERIFIED`). ``created_at`` never reads the wall clock: it is ``$SOURCE_DATE_EPOCH``
when set (the reproducible-builds convention), else the committer date of the checkout's git
``HEAD``, else the Unix epoch; ``git_commit`` is ``HEAD`` (null outside a git checkout). Both
are recorded, not verified: a commit that changes no hashed file leaves the benchmark as it was.

>>> from policystrata.model import load_domain
>>> m = freeze_manifest(load_domain("support_saas"), "generated", count=3, seed=7)
>>> m["manifest_version"], m["benchmark_manifest_id"][:4], len(m["benchmark_manifest_id"])
('policystrata.benchmark-manifest.v1', 'psf-', 24)
>>> verify_manifest(m, freeze_manifest(load_domain("support_saas"), "generated", count=3, seed=7))
[]
>>> [d.field for d in verify_manifest(m, freeze_manifest(load_domain("support_saas"),
...     "generated", count=3, seed=8))]
['generated_seed', 'suite_hash', 'task_hash']
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policystrata import __version__
from policystrata.bench.cases import BenchCase
from policystrata.bench.suites import resolve_suite
from policystrata.errors import InputError
from policystrata.model import Domain
from policystrata.paths import grammars_dir, rules_dir

MANIFEST_VERSION = "policystrata.benchmark-manifest.v1"
SHOWN = 8  # changed files named per mismatching field (then "and N more")
PACKAGE = Path(__file__).resolve().parent.parent  # the policystrata package directory

#: Code (relative to the package directory) that decides a run's verdicts and numbers.
DETECTOR_CODE = (
    "*.py",
    "lower/**/*.py",
    "engine/*.py",
    "sql/*.py",
    "ir/*.py",
    "model/*.py",
    "db/*.py",
    "bench/runner.py",
    "bench/score.py",
    "bench/minimize.py",
    "bench/published.py",
    "bench/artifacts.py",
)
GENERATOR_CODE = ("bench/generate.py", "bench/suites.py", "bench/cases.py")
OPERATOR_CODE = ("stack/*.py",)

#: Manifest hash field -> the group of ``files`` it digests.
GROUPS = {
    "policy_hash": "policy",
    "surfaces_hash": "surfaces",
    "domain_hash": "domain",
    "suite_hash": "suite",
    "task_hash": "tasks",
    "mutation_operator_hash": "mutation_operators",
    "detector_hash": "detector",
    "generator_hash": "generator",
}
#: Fields a verification compares (and the manifest id digests), in report order.
VERIFIED = (
    "domain",
    "suite",
    "generated_count",
    "generated_seed",
    "policy_version",
    "surface_versions",
    "package_version",
    *GROUPS,
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def group_hash(files: dict[str, str]) -> str:
    """sha256 of the sorted ``path digest`` lines of a group of files."""
    return _sha("".join(f"{p} {d}\n" for p, d in sorted(files.items())).encode())


def _digest_files(root: Path, patterns: Iterable[str], prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(root).as_posix()
                out[f"{prefix}{rel}"] = _sha(path.read_bytes())
    return out


def case_entry(case: BenchCase) -> dict[str, Any]:
    """A case as the runner receives it (what ``task_hash`` digests)."""
    return {
        "index": case.index,
        "task_id": case.task_id,
        "principal": case.principal,
        "ir": case.query.to_text() if case.query is not None else None,
        "mutation": case.mutation,
        "style": case.style,
        "expected": [case.expected_class, case.expected_surface, case.expected_containment],
        "surface_versions": dict(sorted(case.surface_versions.items())),
        "invalid": case.invalid,
        "request": case.request,
        "policy_version": case.policy_version,
        "source": case.source,
        "line": case.line,
    }


def _domain_files(domain: Domain) -> dict[str, dict[str, str]]:
    root = domain.path
    files = _digest_files(root, ("**/*",), "domain/")
    policy = {k: v for k, v in files.items() if k == "domain/policy.yaml"}
    surfaces = {k: v for k, v in files.items() if k == "domain/surfaces.yaml"}
    rest = {k: v for k, v in files.items() if k not in policy and k not in surfaces}
    return {"policy": policy, "surfaces": surfaces, "domain": rest}


def git_head(root: Path = PACKAGE.parent) -> tuple[str | None, str | None]:
    """(commit, committer date ISO 8601) of the checkout's HEAD, or (None, None)."""
    if not (root / ".git").exists():
        return None, None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%H %cI"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None, None
    return (out[0], out[1]) if len(out) == 2 else (None, None)


def created_at(commit_date: str | None) -> str:
    """``$SOURCE_DATE_EPOCH``, else the commit date, else the epoch (never the wall clock)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        when = dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC)
    elif commit_date:
        when = dt.datetime.fromisoformat(commit_date).astimezone(dt.UTC)
    else:
        when = dt.datetime.fromtimestamp(0, tz=dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def freeze_manifest(
    domain: Domain,
    suite: str | None,
    suite_file: Path | None = None,
    count: int | None = None,
    seed: int | None = None,
    extra_rules: Iterable[Path] = (),
    *,
    rules: Path | None = None,
    grammars: Path | None = None,
    package: Path | None = None,
) -> dict[str, Any]:
    """The manifest of a benchmark (``rules``/``grammars``/``package`` default to the shipped
    ones; given, they stand in for them, as a test or a patched checkout does)."""
    source = resolve_suite(domain, suite, suite_file, count, seed)
    meta = source.meta
    generated = "generator_stream" in meta or meta.get("provenance") == "hand_authored+generated"
    tasks = [case_entry(c) for c in source.cases()]
    if "suite_file_sha256" in meta:
        suite_files = {f"suite/{meta['suite_file']}": meta["suite_file_sha256"]}
    else:
        suite_files = {}
    if generated:
        params = {k: meta.get(k) for k in ("generator_stream", "count", "seed")}
        params["count"] = params["count"] if params["count"] is not None else source.total
        suite_files["suite/generated"] = _sha(_canonical(params))
    pkg = package or PACKAGE
    detector = {
        **_digest_files(rules or rules_dir(), ("*.dl",), "rules/"),
        **_digest_files(grammars or grammars_dir(), ("*.lark",), "grammars/"),
        **_digest_files(pkg, DETECTOR_CODE, "policystrata/"),
    }
    for path in extra_rules:
        detector[f"extra_rules/{path.name}"] = _sha(path.read_bytes())
    files = {
        **_domain_files(domain),
        "suite": suite_files,
        "tasks": {f"task/{t['index']:05d}": _sha(_canonical(t)) for t in tasks},
        "mutation_operators": _digest_files(pkg, OPERATOR_CODE, "policystrata/"),
        "detector": detector,
        "generator": _digest_files(pkg, GENERATOR_CODE, "policystrata/"),
    }
    commit, commit_date = git_head()
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "created_at": created_at(commit_date),
        "domain": domain.name,
        "suite": source.name,
        "generated_count": (source.total if generated else None),
        "generated_seed": meta.get("seed") if generated else None,
        "policy_version": meta.get("policy_version") or domain.policy.version,
        "surface_versions": meta.get("default_surface_versions") or dict(domain.surfaces.versions),
        "suite_metadata": meta.get("suite_metadata") or {},
        **{field: group_hash(files[group]) for field, group in GROUPS.items()},
        "package_version": __version__,
        "git_commit": commit,
        "task_count": len(tasks),
        "files": files,
    }
    manifest["benchmark_manifest_id"] = manifest_id(manifest)
    return manifest


def manifest_id(manifest: dict[str, Any]) -> str:
    """``psf-`` + 20 hex of the verified fields."""
    return "psf-" + _sha(_canonical({k: manifest.get(k) for k in VERIFIED}))[:20]


@dataclass(frozen=True)
class Mismatch:
    """One field of a manifest that no longer holds, with the files that changed."""

    field: str
    frozen: Any
    current: Any
    files: tuple[str, ...] = ()  # ``changed: rules/gate.dl``, ``added: ...``, ``removed: ...``

    def line(self) -> str:
        """``detector_hash: changed rules/gate.dl`` / ``generated_seed: 7 -> 8``."""
        if self.files:
            shown = ", ".join(self.files[:SHOWN])
            more = len(self.files) - SHOWN
            return f"{self.field}: {shown}" + (f" and {more} more" if more > 0 else "")
        return f"{self.field}: {self.frozen!r} -> {self.current!r}"


def _file_changes(frozen: dict[str, str], current: dict[str, str]) -> tuple[str, ...]:
    out = []
    for path in sorted(set(frozen) | set(current)):
        a, b = frozen.get(path), current.get(path)
        if a != b:
            out.append(f"{'added' if a is None else 'removed' if b is None else 'changed'} {path}")
    return tuple(out)


def verify_manifest(frozen: dict[str, Any], current: dict[str, Any]) -> list[Mismatch]:
    """Every verified field of ``frozen`` that ``current`` (the manifest recomputed now) does
    not match, naming the files behind each hash; plus the id if the manifest was edited."""
    out: list[Mismatch] = []
    files_a, files_b = frozen.get("files") or {}, current.get("files") or {}
    for field in VERIFIED:
        if frozen.get(field) == current.get(field):
            continue
        group = GROUPS.get(field)
        changes = _file_changes(files_a.get(group) or {}, files_b.get(group) or {}) if group else ()
        out.append(Mismatch(field, frozen.get(field), current.get(field), changes))
    if frozen.get("benchmark_manifest_id") != manifest_id(frozen):
        out.append(
            Mismatch(
                "benchmark_manifest_id",
                frozen.get("benchmark_manifest_id"),
                manifest_id(frozen),
                ("the manifest's fields do not hash to its id (edited by hand)",),
            )
        )
    return out


def read_manifest(path: Path) -> dict[str, Any]:
    """A manifest file, checked to be one (InputError naming the file otherwise)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    except UnicodeDecodeError:
        raise InputError("not a UTF-8 text file", file=str(path)) from None
    if not isinstance(data, dict) or data.get("manifest_version") != MANIFEST_VERSION:
        raise InputError(
            f"not a benchmark manifest (manifest_version is not {MANIFEST_VERSION})",
            file=str(path),
        )
    return data


def metadata_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a frozen run's metadata.json records (the published freeze fields)."""
    return {
        "benchmark_manifest_id": manifest["benchmark_manifest_id"],
        **{f: manifest.get(f) for f in GROUPS},
    }
