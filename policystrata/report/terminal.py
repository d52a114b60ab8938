"""Terminal renderer: a rich tree per witness, read from the witness JSON (so a saved witness
renders exactly like a live one).

stdout carries the report; nothing here writes progress.

>>> from policystrata.witness import CaseInfo, Witness
>>> w = Witness(id="x", case=CaseInfo(id="c1", principal="acme_analyst"),
...             witness_class="lowering_violation", localized_surface="compiler", check="c",
...             key="accounts", rule_id="r", message="m", atom='violation("c1")',
...             proof={"kind": "fact", "atom": {"pred": "p", "args": ["a"]}, "text": 'p("a")',
...                    "provenance": [{"source": "policy.yaml", "line": 3}]})
>>> "policy.yaml:3" in witness_text(w)
True
"""

from __future__ import annotations

import io
import textwrap
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from policystrata.facts import Provenance
from policystrata.prooftree import ProofNode
from policystrata.witness import CheckReport, Witness

CLASS_STYLE = {
    "over_permissive": "bold red",
    "unsafe_release": "bold red",
    "lowering_violation": "bold magenta",
    "semantic_drift": "bold yellow",
    "over_restrictive": "bold cyan",
    "clean": "bold green",
}


WHY_NOT_SHOWN = 3  # why-not lines per absent leaf on the terminal; the JSON keeps all


def _console(file: Any = None) -> Console:
    return Console(file=file, highlight=False, soft_wrap=False, width=None if file is None else 120)


def proof_tree(node: ProofNode | None, tree: Tree | None = None) -> Tree:
    """Build a rich Tree from a proof."""
    if node is None:
        return Tree(Text("(no proof)", style="dim"))
    label = _node_label(node)
    branch = Tree(label) if tree is None else tree.add(label)
    for premise in node.premises:
        proof_tree(premise, branch)
    return branch


def _node_label(node: ProofNode) -> Text | Group:
    text = Text()
    if node.kind == "rule":
        text.append(node.atom_text(), style="bold")
        text.append(f"  ⟸ {node.rule}", style="blue")
        if node.file:
            text.append(f"  {node.file}:{node.line}", style="dim")
        if node.message:
            text.append("\n" + node.message, style="italic")
    elif node.kind == "fact":
        text.append("✓ ", style="green")
        text.append(node.atom_text())
        provs = [provenance_text(p) for p in node.provenance]
        if provs:
            text.append("  " + "; ".join(provs), style="dim")
    elif node.kind == "absent":
        text.append("✗ absent ", style="red")
        text.append(node.atom_text().lstrip("!"))
        text.append("  (closed world)", style="dim")
        reasons = []
        for why in node.why_not[:WHY_NOT_SHOWN]:
            reason = why.get("failed") or why.get("reason")
            where = f" [{why['rule']}]" if why.get("rule") else ""
            reasons.append(f"why not{where}: {reason}")
        if len(node.why_not) > WHY_NOT_SHOWN:
            more = len(node.why_not) - WHY_NOT_SHOWN
            reasons.append(f"… {more} more rule(s) (see --format json)")
        if reasons:  # indented as a block, so a wrapped reason stays under its "why not"
            grid = Table.grid()
            grid.add_column(width=2)
            grid.add_column(style="dim")
            for line in reasons:
                grid.add_row("", Text(line))
            return Group(text, grid)
    else:  # builtin
        text.append("= ", style="cyan")
        text.append(node.atom_text())
    return text


def provenance_text(prov: Provenance | dict[str, Any]) -> str:
    """Where a fact came from, for people: a span into the SQL of a record is shown as
    ``sql[a:b]`` after the record's location, so it is not read as a span of the file.

    >>> provenance_text({"source": "traces.jsonl", "line": 3, "span": [0, 8], "snippet": "select"})
    'traces.jsonl:3 sql[0:8] `select`'
    >>> provenance_text({"source": "policy.yaml", "line": 12})
    'policy.yaml:12'
    """
    p = prov if isinstance(prov, Provenance) else Provenance.from_json(prov)
    if p.span is None or p.source == "sql":
        return str(p)
    where = str(Provenance(p.source, line=p.line, column=p.column))
    sql = str(Provenance("sql", span=p.span, snippet=p.snippet, note=p.note))
    return f"{where} {sql}"


def sql_excerpt(sql: str, span: tuple[int, int], width: int = 60) -> list[str]:
    """The line of ``sql`` that holds ``span``, with a caret under the span (at most ``width``
    characters of the line, around the caret).

    >>> print("\\n".join(sql_excerpt("select a,\\n  count(\\nfrom t", (24, 25))))
    line 3, column 6:
      from t
           ^
    """
    start, end = span
    line_start = sql.rfind("\n", 0, start) + 1
    line_end = sql.find("\n", start)
    line_end = len(sql) if line_end < 0 else line_end
    text = sql[line_start:line_end].replace("\t", " ").replace("\r", " ")
    col = start - line_start
    marks = max(1, min(end, line_end) - start)
    if len(text) > width:
        lo = max(0, min(col - width // 2, len(text) - width))
        prefix = "…" if lo > 0 else ""
        suffix = "…" if lo + width < len(text) else ""
        text = prefix + text[lo : lo + width] + suffix
        col = col - lo + len(prefix)
        marks = min(marks, width - col + len(prefix))
    lineno = sql.count("\n", 0, start) + 1
    return [
        f"line {lineno}, column {start - line_start + 1}:",
        "  " + text,
        "  " + " " * col + "^" * marks,
    ]


def _highlighted_sql(sql: str, spans: list[tuple[int, int]]) -> Text:
    text = Text(sql)
    for start, end in spans:
        if 0 <= start < end <= len(sql):
            text.stylize("bold white on red", start, end)
    return text


def _rows(part: dict[str, Any]) -> str:
    if "refused" in part:
        return f"not executed ({part['refused']})"
    if "error" in part:
        return f"failed ({part['error']})"
    rows = part.get("rows", [])
    shown = ", ".join(str(tuple(r)) if len(r) > 1 else str(r[0]) for r in rows[:6])
    more = f" … {part.get('row_count', len(rows))} rows" if len(rows) > 6 else ""
    return f"{part.get('row_count', len(rows))} row(s): {shown}{more}"


def evidence_lines(details: dict[str, Any]) -> list[str]:
    """A few readable lines for real-row evidence (the JSON keeps everything)."""
    if details.get("executed") is False:
        return [f"real rows: the SQL was not executed ({details.get('reason')})"]
    tenant = details.get("tenant")
    lines = [f"real rows under tenant {tenant}'s session (app role, RLS in force):"]
    if "canonical" in details:
        lines.append(f"  canonical SQL: {_rows(details['canonical'])}")
    if "layer" in details:
        lines.append(f"  this SQL:      {_rows(details['layer'])}")
    if isinstance(details.get("rows"), dict):  # a database check's query
        lines.append(f"  the check's query: {_rows(details['rows'])}")
    if "bypass_layer" in details:
        lines.append(f"  RLS bypassed:  {_rows(details['bypass_layer'])}")
    containment = details.get("containment", {})
    if containment.get("contained"):
        lines.append(f"  RLS removed {containment.get('rows_removed_count')} row(s): contained")
    cross = details.get("cross_tenant", {})
    if cross.get("visible"):
        lines.append(f"  rows of other tenants visible: {', '.join(cross['foreign_tenants'])}")
    for table, probe in sorted(details.get("probes", {}).items()):
        if probe.get("foreign_visible"):
            lines.append(f"  probe {table}: app sees tenants {', '.join(probe['foreign_visible'])}")
        if probe.get("own_hidden"):
            lines.append(f"  probe {table}: app cannot see its own tenant's rows")
    return lines


def witness_renderable(witness: Witness) -> Panel:
    """A panel with the verdict header, the case, the proof tree and the fix."""
    style = CLASS_STYLE.get(witness.witness_class, "bold")
    header = Text()
    header.append(f"{witness.witness_class}", style=style)
    header.append(f"  localized: {witness.localized_surface}", style="bold")
    if witness.containment_layer:
        header.append(f"  contained by: {witness.containment_layer}", style="green")
    else:
        header.append("  not contained", style="red")
    parts: list[Any] = [header, Text(witness.message)]
    case = witness.case
    meta = Text(f"case {case.id}", style="dim")
    if case.principal:
        meta.append(f" · principal {case.principal}", style="dim")
    if case.source and case.source.file:
        loc = case.source.file + (f":{case.source.line}" if case.source.line else "")
        meta.append(f" · {loc}", style="dim")
    parts.append(meta)
    rows: list[tuple[str, Text]] = []
    if case.ir:
        rows.append(("ir", Text(case.ir)))
    proof = witness.proof
    if case.sql:
        rows.append(("sql", _highlighted_sql(case.sql, proof.sql_spans() if proof else [])))
        for span in (proof.sql_spans("sql_finding") if proof else [])[:1]:
            if 0 <= span[0] < len(case.sql):
                head, *excerpt = sql_excerpt(case.sql, span)
                rows.append(("at", Text(head)))
                rows.extend(
                    ("", Text(line, style="bold", no_wrap=True, overflow="crop"))
                    for line in excerpt
                )
    if rows:
        parts.append(_labelled(rows))
    if witness.containment_message:
        parts.append(Text(witness.containment_message, style="green"))
    for other in witness.also_failed:
        parts.append(
            Text(
                f"also failed: {other.surface} ({other.witness_class}) {other.check}: "
                f"{other.message}",
                style="yellow",
            )
        )
    if witness.evidence.level == "real_db" and witness.evidence.details:
        parts.extend(Text(line, style="cyan") for line in evidence_lines(witness.evidence.details))
    parts.append(Text("proof", style="bold underline"))
    parts.append(proof_tree(witness.proof))
    if witness.fix:
        parts.append(_labelled([("fix", Text(witness.fix))], style="bold green"))
    title = f"[{style}]✗ {escape(witness.check)}[/] [dim]{escape(witness.rule_id)}[/]"
    return Panel(Group(*parts), title=title, title_align="left", expand=False)


def _labelled(rows: list[tuple[str, Text]], style: str = "dim") -> Table:
    """Label / value rows; a value that wraps (or has several lines) stays right of its label."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style=style, no_wrap=True)
    grid.add_column()
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def render_witness(witness: Witness, console: Console | None = None) -> None:
    (console or _console()).print(witness_renderable(witness))


def witness_text(witness: Witness) -> str:
    """The rendered witness as plain text (for Markdown reports and tests)."""
    buf = io.StringIO()
    Console(file=buf, width=120, no_color=True, highlight=False).print(witness_renderable(witness))
    return buf.getvalue()


def render_check(report: CheckReport, console: Console | None = None) -> None:
    """All witnesses and record errors of a check, then a one-line summary."""
    con = console or _console()
    for result in report.results:
        for witness in result.witnesses:
            con.print(witness_renderable(witness))
        for error in result.errors:
            loc = ""
            if error.source and error.source.file:
                loc = f"{error.source.file}:{error.source.line}: "
            # wrapped by hand: continuation lines indented under the first, no trailing padding
            text = textwrap.fill(
                f"✗ {loc}{error.kind}: {error.message}",
                width=max(40, con.width),
                subsequent_indent="  ",
                break_on_hyphens=False,
            )
            con.print(Text(text, style="bold red"), soft_wrap=True)
    c = report.counts
    summary = Text()
    summary.append(f"{c['cases']} case(s): ")
    summary.append(f"{c['clean']} clean", style="green")
    summary.append(", ")
    summary.append(f"{c['violation']} with violations", style="red" if c["violation"] else "")
    summary.append(", ")
    summary.append(f"{c['error']} input error(s)", style="red" if c["error"] else "")
    con.print(summary)
    con.print(Text(f"{c['witnesses']} witness(es) · rules {report.rules_digest[:12]}", style="dim"))
