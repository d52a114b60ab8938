"""Render ``docs/facts.md`` from the fact declarations (``rules/decl_*.dl``): one source of truth.

Run ``uv run python -m policystrata.factdoc > docs/facts.md`` after changing a declaration; a test
fails while the page and the declarations disagree. The SQL section embeds ``docs/sql-facts.md``
(every SQL fact with an example query and the facts it gives).

>>> "principal_tenant(principal, tenant)" in render_facts_doc()
True
"""

from __future__ import annotations

from pathlib import Path

from policystrata.engine import load_program
from policystrata.paths import rule_files

#: Where each declaration file's facts come from, in reading order.
SOURCES = {
    "decl_policy.dl": (
        "Policy facts",
        "Compiled once per domain by `policystrata.lower.policy.compile_domain` from policy.yaml, "
        "surfaces.yaml and schema.sql (tables, keys and RLS parsed with the SQL parser). No case "
        "argument; provenance is the file and line (`policy.yaml:23`).",
    ),
    "decl_case.dl": (
        "Case facts",
        "Lowered per case by the passes of `policystrata.check.CASE_PASSES`: the case and its "
        "principal (trace record or command line), the semantic IR (`policystrata.lower.ir`), the "
        "release decision, and the artifacts of the manifest, grammar and validator layers "
        "(`policystrata.lower.artifacts`). The first argument is the case id.",
    ),
    "decl_db.dl": (
        "Database facts (the DDL in force)",
        "Per case: the RLS policies, grants and flags of the DDL in force for the case, from "
        "schema.sql, a rewritten schema, or the live catalog (`policystrata.db.catalog`).",
    ),
    "decl_evidence.dl": (
        "Real-row facts",
        "Per case, only when a database is configured (`--db`): what PostgreSQL really returned "
        "under the case's tenant session (`policystrata.lower.rows`).",
    ),
    "decl_db_checks.dl": (
        "Database check facts",
        "Per case, for each `rls_checks` / `state_assertions` entry of a scan config (one case "
        "each): what the check states (`policystrata.lower.dbcheck`; provenance: the config's "
        "line) and what its query returned, logged in as the app role under the check's tenant "
        "(or why it did not run). `rules/db_checks.dl` judges them.",
    ),
    "decl_compat.dl": (
        "Published-format facts",
        "The published (policystrata 1.x) surfaces vocabulary mapped onto ours (ground facts in "
        "`rules/vocabulary.dl`), and the scan config's gate inputs (`policystrata.scan.run`; "
        "`rules/gate.dl` reads them). No case argument.",
    ),
    "decl_dbt.dl": (
        "dbt Semantic Layer facts",
        "Per case, when the case carries a dbt Semantic Layer (`strata check-integration "
        "dbt-semantic`, the scan's `dbt.files`): its semantic models, dimensions, measures and "
        "metrics, read and validated with dbt-semantic-interfaces and lowered by "
        "`policystrata.lower.dbt` (aggregates, filters and dimension columns parsed with the SQL "
        "parser). Provenance is the dbt file and line.",
    ),
    "decl_stack.dl": (
        "Stack artifact facts",
        "Per case: extra artifact facts of the reference stack's layers "
        "(`policystrata.lower.artifacts`).",
    ),
    "decl_rls.dl": (
        "Row security policies read as queries",
        "A policy's USING expression lowered as the query it filters "
        "(`policystrata.lower.sql.policy_query`): `rls_query_*` from schema.sql or the live "
        "catalog, and their per-case `db_policy_query_*` copies for the DDL in force.",
    ),
    "decl_drift.dl": (
        "Declared filters",
        "Predicates a compiler adds by design, declared in policy.yaml (metrics.<m>.filters, "
        "tables.<t>.filters) and compiled by `policystrata.lower.policy.declared_filters`.",
    ),
}


def _table(decls: list[object]) -> str:
    lines = ["| fact | meaning |", "| --- | --- |"]
    for d in decls:
        doc = (getattr(d, "doc", None) or "").replace("|", "\\|")
        lines.append(f"| `{str(d).removeprefix('.decl ')}` | {doc} |")
    return "\n".join(lines)


def render_facts_doc(rules: list[Path] | None = None, sql_doc: Path | None = None) -> str:
    """The Markdown of docs/facts.md."""
    program = load_program(rules if rules is not None else rule_files())
    by_file: dict[str, list[object]] = {}
    for decl in program.decls.values():
        by_file.setdefault(Path(decl.loc.file).name, []).append(decl)
    out = [
        "# Fact schema",
        "",
        "Every fact the rules can read, generated from the `.decl` declarations in"
        " `rules/decl_*.dl`"
        " (`uv run python -m policystrata.factdoc > docs/facts.md`). A fact is `pred(args...)`"
        ' with typed constants (`"acme"`, `1`, `1.0`, `true` are distinct). Per-case facts have'
        " the case id as their first argument. Each fact carries provenance, which proofs print"
        " at their leaves.",
        "",
    ]
    files = [f for f in SOURCES if f in by_file] + sorted(
        f for f in by_file if f not in SOURCES and f != "decl_sql.dl"
    )
    for name in files:
        title, intro = SOURCES.get(name, (f"Facts of {name}", ""))
        out += [f"## {title} (`rules/{name}`)", "", intro, "", _table(by_file[name]), ""]
    sql_page = (
        sql_doc if sql_doc is not None else Path(__file__).parent.parent / "docs" / "sql-facts.md"
    )
    if "decl_sql.dl" in by_file:
        out += ["## SQL facts (`rules/decl_sql.dl`)", ""]
        if sql_page.is_file():
            body = sql_page.read_text(encoding="utf-8").split("\n", 1)[1].lstrip("\n")
            out += [body.rstrip("\n"), ""]
        else:
            out += [_table(by_file["decl_sql.dl"]), ""]
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    print(render_facts_doc(), end="")
