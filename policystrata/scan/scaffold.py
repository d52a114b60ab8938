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

import json
import shutil
from pathlib import Path

from policystrata.errors import InputError
from policystrata.paths import domains_dir

TEMPLATES = Path(__file__).resolve().parent / "templates"
EXAMPLES = ("basic", "postgres_dbt")
#: The domain the templates' example files (traces, dbt models) are written for; for another
#: source domain the basic example's traces are compiled from that domain (:func:`example_traces`).
TEMPLATE_DOMAIN = "support_saas"


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
    if example == "postgres_dbt" and source_domain != TEMPLATE_DOMAIN:
        raise InputError(
            f"the postgres_dbt example is written for --source-domain {TEMPLATE_DOMAIN}"
        )
    _check_target(out, force)
    out.mkdir(parents=True, exist_ok=True)
    written = copy_domain(source_domain, out / "domain", force=True)
    root = TEMPLATES / example
    for path in sorted(root.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        target = out / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.name == "traces.jsonl" and source_domain != TEMPLATE_DOMAIN:
            text = example_traces(source_domain)
        else:
            text = path.read_text(encoding="utf-8").replace("{{domain}}", source_domain)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def example_traces(domain_name: str, count: int = 3) -> str:
    """Example imported traces (JSONL) for a built-in domain: the SQL the reference stack's
    fault-free compiler emits for the first ``count`` allowed clean controls of its seeded suite
    (in the compiler style each control names; bound parameters aside), and one agent-session
    record (skipped and counted by the scan). The records are the domain's own, so the first
    `strata scan` of the scaffold passes.

    >>> first = json.loads(example_traces("support_saas").splitlines()[0])
    >>> first["principal"], first["regression_case"], first["sql"].split()[0]
    ('acme_analyst', 'pass_to_pass', 'select')
    """
    from policystrata.bench.suites import resolve_suite
    from policystrata.model import load_domain
    from policystrata.stack.pipeline import Request, run_stack

    domain = load_domain(domain_name)
    lines: list[str] = []
    principal = ""
    for case in resolve_suite(domain, "seeded").cases():
        if len(lines) >= count:
            break
        if not case.is_control or case.style == "params" or case.query is None:
            continue
        run = run_stack(domain, Request(case.principal, case.query, case.style))
        if run.sql is None or run.release != "release":
            continue  # a denied control: nothing to trace
        principal = principal or case.principal
        record = {
            "id": case.task_id,
            "principal": case.principal,
            "tenant_ids": list(run.tenant_ids or ()),
            "release_allowed": True,
            "semantic_ir": case.query.to_text(),
            "sql": " ".join(run.sql.split()),
            "regression_case": "pass_to_pass",
            "source": f"policystrata reference compiler ({domain.name})",
        }
        lines.append(json.dumps(record))
    session = {"id": "agent_session_1", "record_type": "agent_session", "principal": principal}
    lines.append(json.dumps(session))
    return "\n".join(lines) + "\n"
