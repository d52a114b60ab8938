"""``strata init-scan`` and ``strata init-domain``: scaffolds shipped inside the package
(``policystrata/scan/templates/``) plus a copy of a built-in domain.

>>> import pathlib, tempfile
>>> out = pathlib.Path(tempfile.mkdtemp()) / "demo"
>>> sorted(p.name for p in scaffold_scan(out, "basic") if p.parent == out)
['README.md', 'policystrata.yaml', 'traces.jsonl']
>>> (out / "domain" / "policy.yaml").is_file()
True
"""

from __future__ import annotations

import shutil
from pathlib import Path

from policystrata.errors import InputError
from policystrata.paths import domains_dir

TEMPLATES = Path(__file__).resolve().parent / "templates"
EXAMPLES = ("basic", "postgres_dbt")
#: A built-in domain's own example traces (``domains/<d>/traces.jsonl``): ``init-scan
#: --source-domain <d>`` writes them instead of the basic template's (written for support_saas).
EXAMPLE_TRACES = "traces.jsonl"


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError("--out exists and is not a directory", file=str(out))
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError("--out is not empty (use --force to write into it)", file=str(out))


def copy_domain(name: str, out: Path, *, force: bool = False) -> list[Path]:
    """Copy built-in domain ``name`` (policy.yaml, surfaces.yaml, schema.sql, seed.sql,
    suites/) into ``out``."""
    src = domains_dir() / name
    if not (src / "policy.yaml").is_file():
        known = sorted(p.name for p in domains_dir().iterdir() if (p / "policy.yaml").is_file())
        raise InputError(f"unknown built-in domain {name!r} (built-in: {', '.join(known)})")
    _check_target(out, force)
    written = []
    for path in sorted(src.rglob("*")):
        if path.name == EXAMPLE_TRACES and path.parent == src:
            continue  # the domain's example traces go beside the scan config (scaffold_scan)
        if path.is_file() and "__pycache__" not in path.parts:
            target = out / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            written.append(target)
    return written


def scaffold_scan(
    out: Path, example: str = "basic", *, source_domain: str = "support_saas", force: bool = False
) -> list[Path]:
    """Write a scan config, example traces (and, for ``postgres_dbt``, a dbt model and a
    failing trace file) and a copy of ``source_domain`` into ``out``."""
    if example not in EXAMPLES:
        raise InputError(f"unknown example {example!r} (known: {', '.join(EXAMPLES)})")
    if example == "postgres_dbt" and source_domain != "support_saas":
        raise InputError("the postgres_dbt example is written for --source-domain support_saas")
    _check_target(out, force)
    out.mkdir(parents=True, exist_ok=True)
    written = copy_domain(source_domain, out / "domain", force=True)
    root = TEMPLATES / example
    for path in sorted(root.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        target = out / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        own = domains_dir() / source_domain / EXAMPLE_TRACES
        if path.relative_to(root) == Path(EXAMPLE_TRACES) and own.is_file():
            path = own
        text = path.read_text(encoding="utf-8").replace("{{domain}}", source_domain)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
