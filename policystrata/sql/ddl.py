"""schema.sql -> tables, columns, keys, foreign keys, row-level security, policies, grants.

The script is split into statements with the SQL tokenizer and each statement is parsed with
the SQL parser (through :mod:`policystrata.sql.adapter`). Statements the parser can only
keep as an opaque command (``ALTER TABLE … ENABLE ROW LEVEL SECURITY``, ``CREATE POLICY``,
multi-table ``GRANT``) are read token by token; the ``USING`` / ``WITH CHECK`` expressions of a
policy are parsed as expressions (their facts are lowered by :mod:`policystrata.lower.schema`).
UNIQUE constraints and unique indexes are keys. A statement that does not parse is an
:class:`InputError`
naming ``file:line``. Statements that carry no containment information (``CREATE INDEX``,
``CREATE ROLE``, ``CREATE EXTENSION``, ``ALTER TYPE``, ``ALTER PUBLICATION``, a ``DO`` block,
``INSERT``, ``COMMENT``...) are parsed and ignored.

Migration-style scripts (COMPAT.md §8: a dump that ALTERs, grants on and writes policies for
tables it never creates, and calls platform functions such as ``auth.uid()``) load: what parses
is used, and what refers to something the script does not define is a *note*
(``SchemaInfo.notes``, ``file:line: message``), never an error. A table the script only refers
to is *partial* (``SchemaInfo.partial``): its RLS, grants and the columns
it adds are known, the rest of its columns are not.

This is the DDL *model* the domain model needs (low: only the SQL adapter below it).

>>> mig = read_ddl('''
... CREATE TABLE notes (id uuid PRIMARY KEY, team_id uuid REFERENCES teams (id));
... ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
... CREATE POLICY own ON invoices FOR SELECT TO authenticated USING (user_id = auth.uid());
... ''')
>>> sorted(mig.partial)
['invoices', 'teams']
>>> for n in mig.notes:
...     print(n)
schema.sql:2: table 'teams' is referenced but never created here (noted: its columns are unknown)
schema.sql:3: table 'invoices' is referenced but never created here (noted: its columns are unknown)
schema.sql:4: policy own on invoices calls auth.uid(), defined outside this script (noted)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from policystrata.errors import InputError
from policystrata.facts import FactSet
from policystrata.sql.adapter import (
    SqlglotError,
    Statement,
    Tok,
    data_type_name,
    exp,
    function_name,
    ident_name,
    parse_expression,
    parse_one,
    split_statements,
    table_name,
)
from policystrata.sql.errors import describe_parse_error, describe_token_error

__all__ = ["ForeignKey", "RlsPolicy", "SchemaInfo", "TableInfo", "read_ddl"]

PRIVILEGES = ("select", "insert", "update", "delete", "truncate", "references", "trigger")
POLICY_COMMANDS = ("all", "select", "insert", "update", "delete")


@dataclass(frozen=True)
class ForeignKey:
    """``column`` references ``ref_table.ref_column`` (many-to-one towards ``ref_table``)."""

    column: str
    ref_table: str
    ref_column: str


@dataclass
class TableInfo:
    name: str
    columns: dict[str, str] = field(default_factory=dict)
    primary_key: list[str] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    line: int = 0
    not_null: set[str] = field(default_factory=set)  # NOT NULL and primary-key columns
    unique_keys: list[list[str]] = field(default_factory=list)  # UNIQUE constraints / indexes
    partial: bool = False  # referenced (ALTER, POLICY, GRANT, FK) but never created here


@dataclass
class RlsPolicy:
    table: str
    name: str
    command: str = "all"
    permissive: bool = True
    roles: list[str] = field(default_factory=list)
    using: str | None = None
    with_check: str | None = None
    line: int = 0
    exprs: dict[str, Any] = field(default_factory=dict)  # clause -> parsed expression


@dataclass
class SchemaInfo:
    """What a schema script declares: tables (columns, keys), row level security, policies,
    grants, and the notes on what it refers to but does not define. Its facts are lowered by
    :func:`policystrata.lower.schema.schema_facts` (kept in ``facts`` by ``parse_schema``)."""

    tables: dict[str, TableInfo]
    facts: FactSet = field(default_factory=FactSet)
    policies: list[RlsPolicy] = field(default_factory=list)
    rls_enabled: dict[str, int] = field(default_factory=dict)
    rls_forced: dict[str, int] = field(default_factory=dict)
    grants: dict[tuple[str, str, str], int] = field(default_factory=dict)
    foreign_keys: list[tuple[str, ForeignKey, int]] = field(default_factory=list)
    source: str = "schema.sql"
    notes: list[InputError] = field(default_factory=list)
    known: bool = True  # False: the domain has no schema.sql (tables come from the policy)

    @property
    def partial(self) -> dict[str, int]:
        """Tables the script refers to but never creates, with the line first referring."""
        return {n: t.line for n, t in self.tables.items() if t.partial}

    def complete(self, table: str) -> bool:
        """Is every column of ``table`` known (created here, in a schema that exists)?"""
        t = self.tables.get(table)
        return self.known and t is not None and not t.partial

    def column_type(self, table: str, column: str) -> str | None:
        t = self.tables.get(table)
        return t.columns.get(column) if t else None


class _Reader:
    """Builds a SchemaInfo statement by statement."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.tables: dict[str, TableInfo] = {}
        self.pending_fks: list[tuple[str, ForeignKey, int]] = []
        self.enabled: dict[str, int] = {}
        self.forced: dict[str, int] = {}
        self.policies: list[RlsPolicy] = []
        self.grants: dict[tuple[str, str, str], int] = {}
        self.notes: list[InputError] = []
        self.functions: set[str] = set()  # functions the script creates (schema.name, name)
        self.fk_lines: list[tuple[str, ForeignKey, int]] = []

    # -- helpers -----------------------------------------------------------------------------
    def error(self, message: str, line: int) -> InputError:
        return InputError(message, file=self.source, line=line)

    def note(self, message: str, line: int) -> None:
        self.notes.append(InputError(message, file=self.source, line=line))

    def known_table(self, name: str, line: int) -> str:
        """A table the statement refers to; one never created here becomes a partial table
        (noted once, with "did you mean" when a created table has a close name)."""
        if name not in self.tables:
            created = sorted(t for t, info in self.tables.items() if not info.partial)
            # a migration refers to tables created elsewhere; a near-identical name is a typo
            typo = difflib.get_close_matches(name, created, n=1, cutoff=0.85)
            hint = f" (did you mean '{typo[0]}'?)" if typo else ""
            self.note(
                f"table '{name}' is referenced but never created here (noted: its columns are "
                f"unknown){hint}",
                line,
            )
            self.tables[name] = TableInfo(name, line=line, partial=True)
        return name

    # -- statements --------------------------------------------------------------------------
    def statement(self, stmt: Statement) -> None:
        first = stmt.tokens[0].upper
        second = stmt.tokens[1].upper if len(stmt.tokens) > 1 else ""
        try:
            tree = parse_one(stmt.text)
        except SqlglotError as e:
            what, span = describe_parse_error(e, stmt.text)
            if span is None:
                raise self.error(f"cannot parse statement: {what}", _error_line(e, stmt)) from None
            at = stmt.start + span[0]  # the token's offset in the script
            line = self.text.count("\n", 0, at) + 1
            column = at - (self.text.rfind("\n", 0, at) + 1) + 1
            raise InputError(
                f"cannot parse statement: {what}", file=self.source, line=line, column=column
            ) from None
        if _creates_function(stmt.tokens):
            self.functions |= _function_names(stmt.tokens)
        if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "TABLE":
            self.create_table(tree, stmt)
        elif isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "INDEX":
            self.unique_index(tree)
        elif isinstance(tree, exp.Alter):
            self.alter_table(tree, stmt)
        elif first in ("GRANT", "REVOKE"):
            self.grant(stmt, revoke=first == "REVOKE")
        elif isinstance(tree, exp.Command):
            if first == "CREATE" and second == "POLICY":
                self.create_policy(stmt)
            elif first == "ALTER" and _has_sequence(stmt.tokens, ("ROW", "LEVEL", "SECURITY")):
                self.alter_rls(stmt)
            elif first == "ALTER" and second == "POLICY":
                self.note(
                    "ALTER POLICY is not read (noted: the policy keeps its CREATE POLICY "
                    "definition)",
                    stmt.line,
                )
            elif first == "ALTER" and second == "TABLE" and _no_fact_alter(stmt.tokens):
                pass  # OWNER TO, REPLICA IDENTITY, ATTACH PARTITION...: no containment facts
            elif first == "CREATE" and second == "ROW":
                self.note(
                    "CREATE ROW POLICY (a ClickHouse row policy) is not read (noted: the "
                    "table's containment is unknown)",
                    stmt.line,
                )
            elif first == "ALTER" and second == "TABLE":
                self.note(
                    "ALTER TABLE statement not read (unsupported syntax; noted: its facts, if "
                    "any, are unknown)",
                    stmt.line,
                )
            elif (first, second) in _MUST_PARSE:
                # the parser gave up on a statement whose facts we need: never skip it silently
                raise self.error(
                    f"cannot parse {first} {second} statement (unsupported syntax)", stmt.line
                )
            # other opaque statements (CREATE ROLE, CREATE EXTENSION...) carry no facts

    def create_table(self, tree: exp.Create, stmt: Statement) -> None:
        schema = tree.this
        if not isinstance(schema, exp.Schema):
            table = tree.find(exp.Table)
            name = table_name(table) if table is not None else ""
            self.tables.setdefault(name, TableInfo(name, line=stmt.line))
            return
        table = schema.this
        assert isinstance(table, exp.Table)
        name = table_name(table)
        before = self.tables.get(name)
        if before is not None and not before.partial:
            if tree.args.get("exists"):
                return  # CREATE TABLE IF NOT EXISTS of a table already created: a no-op
            raise self.error(f"table '{name}' is created twice", stmt.line)
        info = TableInfo(name, line=stmt.line)
        if before is not None:  # referred to before it was created (out-of-order dump)
            info.columns.update(before.columns)
            info.primary_key.extend(before.primary_key)
            info.not_null |= before.not_null
        self.tables[name] = info
        for item in schema.expressions:
            if isinstance(item, exp.ColumnDef):
                col = ident_name(item.this)
                info.columns[col] = data_type_name(item.args.get("kind"))
                for cons in item.args.get("constraints") or []:
                    kind = cons.args.get("kind")
                    if isinstance(kind, exp.PrimaryKeyColumnConstraint):
                        info.primary_key.append(col)
                    elif isinstance(kind, exp.Reference):
                        self.reference(name, [col], kind, stmt.line)
                    elif isinstance(kind, exp.NotNullColumnConstraint) and not kind.args.get(
                        "allow_null"
                    ):
                        info.not_null.add(col)
                    elif isinstance(kind, exp.UniqueColumnConstraint):
                        _add_key(info, [col])
            else:
                self.table_constraint(name, item, stmt.line)

    def table_constraint(self, name: str, item: exp.Expr, line: int) -> None:
        info = self.tables[name]
        if isinstance(item, exp.Constraint):
            for inner in item.expressions:
                self.table_constraint(name, inner, line)
        elif isinstance(item, exp.PrimaryKey):
            for col in item.expressions:
                c = ident_name(col.this if isinstance(col, exp.Ordered) else col)
                if c not in info.primary_key:
                    info.primary_key.append(c)
        elif isinstance(item, exp.ForeignKey):
            cols = [ident_name(c) for c in item.expressions]
            ref = item.args.get("reference")
            if isinstance(ref, exp.Reference):
                self.reference(name, cols, ref, line)
        elif isinstance(item, exp.UniqueColumnConstraint) and isinstance(item.this, exp.Schema):
            _add_key(info, [ident_name(c) for c in item.this.expressions])

    def reference(self, table: str, cols: list[str], ref: exp.Reference, line: int) -> None:
        target = ref.this
        if isinstance(target, exp.Schema):
            ref_table = table_name(target.this)
            ref_cols = [ident_name(c) for c in target.expressions]
        else:
            ref_table = table_name(target)
            ref_cols = []
        for i, col in enumerate(cols):
            ref_col = ref_cols[i] if i < len(ref_cols) else ""
            self.pending_fks.append((table, ForeignKey(col, ref_table, ref_col), line))

    def unique_index(self, tree: exp.Create) -> None:
        """``CREATE UNIQUE INDEX ... ON t (a, b)`` (plain columns, no predicate) is a key of t."""
        index = tree.this
        if not tree.args.get("unique") or not isinstance(index, exp.Index):
            return
        table = index.args.get("table")
        params = index.args.get("params")
        if not isinstance(table, exp.Table) or params is None or params.args.get("where"):
            return
        info = self.tables.get(table_name(table))
        cols = []
        for c in params.args.get("columns") or []:
            c = c.this if isinstance(c, exp.Ordered) else c
            if not isinstance(c, exp.Column):
                return  # an expression index is not a key of columns
            cols.append(ident_name(c.this))
        if info is not None and cols:
            _add_key(info, cols)

    def alter_table(self, tree: exp.Alter, stmt: Statement) -> None:
        table = tree.this
        if not isinstance(table, exp.Table):
            return
        if str(tree.args.get("kind", "TABLE")).upper() != "TABLE":
            return
        name = self.known_table(table_name(table), stmt.line)
        for action in tree.args.get("actions") or []:
            if isinstance(action, exp.AddConstraint):
                for cons in action.expressions:
                    self.table_constraint(name, cons, stmt.line)
            elif isinstance(action, exp.ColumnDef):
                col = ident_name(action.this)
                self.tables[name].columns[col] = data_type_name(action.args.get("kind"))
                for cons in action.args.get("constraints") or []:
                    kind = cons.args.get("kind")
                    if isinstance(kind, exp.PrimaryKeyColumnConstraint):
                        self.tables[name].primary_key.append(col)
                    elif isinstance(kind, exp.Reference):
                        self.reference(name, [col], kind, stmt.line)
                    elif isinstance(kind, exp.NotNullColumnConstraint) and not kind.args.get(
                        "allow_null"
                    ):
                        self.tables[name].not_null.add(col)
            elif isinstance(action, exp.AlterColumn) and action.args.get("allow_null") is not None:
                col = ident_name(action.this)
                if action.args["allow_null"]:
                    self.tables[name].not_null.discard(col)
                else:
                    self.tables[name].not_null.add(col)

    def alter_rls(self, stmt: Statement) -> None:
        """``ALTER TABLE [IF EXISTS] [ONLY] name [*] {ENABLE|DISABLE|FORCE|NO FORCE} ROW LEVEL
        SECURITY``, read token by token."""
        toks = list(stmt.tokens)
        i = 1
        if i < len(toks) and toks[i].upper == "TABLE":
            i += 1
        else:
            return  # ALTER something else
        while i < len(toks) and toks[i].upper in ("IF", "EXISTS", "ONLY"):
            i += 1
        name, i = _qualified_name(toks, i)
        if name is None:
            raise self.error("expected a table name after ALTER TABLE", stmt.line)
        if i < len(toks) and toks[i].type == "STAR":
            i += 1
        name = self.known_table(name, stmt.line)
        action = [t.upper for t in toks[i:]]
        if action == ["ENABLE", "ROW", "LEVEL", "SECURITY"]:
            self.enabled[name] = stmt.line
        elif action == ["DISABLE", "ROW", "LEVEL", "SECURITY"]:
            self.enabled.pop(name, None)
        elif action == ["FORCE", "ROW", "LEVEL", "SECURITY"]:
            self.forced[name] = stmt.line
        elif action == ["NO", "FORCE", "ROW", "LEVEL", "SECURITY"]:
            self.forced.pop(name, None)
        else:
            raise self.error(
                "cannot read ALTER TABLE action (expected [ENABLE|DISABLE|FORCE|NO FORCE] "
                "ROW LEVEL SECURITY)",
                stmt.line,
            )

    def create_policy(self, stmt: Statement) -> None:
        """``CREATE POLICY name ON table [AS PERMISSIVE|RESTRICTIVE] [FOR cmd] [TO role, ...]
        [USING (expr)] [WITH CHECK (expr)]``, read token by token; the expressions are parsed
        as SQL expressions."""
        toks = list(stmt.tokens)
        i = 2
        if i >= len(toks):
            raise self.error("CREATE POLICY without a name", stmt.line)
        pname = _tok_name(toks[i])
        i += 1
        if i >= len(toks) or toks[i].upper != "ON":
            raise self.error("expected ON <table> in CREATE POLICY", stmt.line)
        tname, i = _qualified_name(toks, i + 1)
        if tname is None:
            raise self.error("expected a table name in CREATE POLICY", stmt.line)
        pol = RlsPolicy(self.known_table(tname, stmt.line), pname, line=stmt.line)
        while i < len(toks):
            word = toks[i].upper
            if word == "AS" and i + 1 < len(toks):
                mode = toks[i + 1].upper
                if mode not in ("PERMISSIVE", "RESTRICTIVE"):
                    raise self.error(f"unknown policy mode {toks[i + 1].text}", toks[i].line)
                pol.permissive = mode == "PERMISSIVE"
                i += 2
            elif word == "FOR" and i + 1 < len(toks):
                cmd = toks[i + 1].text.lower()
                if cmd not in POLICY_COMMANDS:
                    raise self.error(f"unknown policy command {toks[i + 1].text}", toks[i].line)
                pol.command = cmd
                i += 2
            elif word == "TO":
                i += 1
                while i < len(toks):
                    pol.roles.append(_role_name(toks[i]))
                    i += 1
                    if i < len(toks) and toks[i].type == "COMMA":
                        i += 1
                        continue
                    break
            elif word == "USING":
                pol.using, i = self._paren_expr(toks, i + 1, stmt)
            elif word == "WITH" and i + 1 < len(toks) and toks[i + 1].upper == "CHECK":
                pol.with_check, i = self._paren_expr(toks, i + 2, stmt)
            else:
                raise self.error(f"unexpected '{toks[i].text}' in CREATE POLICY", toks[i].line)
        self.policies.append(pol)

    def _paren_expr(self, toks: list[Tok], i: int, stmt: Statement) -> tuple[str, int]:
        if i >= len(toks) or toks[i].type != "L_PAREN":
            raise self.error("expected '(' after USING / WITH CHECK", stmt.line)
        depth = 0
        for j in range(i, len(toks)):
            if toks[j].type == "L_PAREN":
                depth += 1
            elif toks[j].type == "R_PAREN":
                depth -= 1
                if depth == 0:
                    return self.text[toks[i].end : toks[j].start], j + 1
        raise self.error("unbalanced parentheses in CREATE POLICY", stmt.line)

    def grant(self, stmt: Statement, revoke: bool) -> None:
        """``GRANT privileges ON [TABLE] t, ... TO role, ...`` and ``REVOKE ... FROM``, read token
        by token (sqlglot 30 keeps multi-table GRANT as an opaque command). ``ALL [PRIVILEGES]``
        expands to every table privilege; ``ON ALL TABLES IN SCHEMA s`` to every table created so
        far. Grants of roles, and grants on sequences, schemas or functions carry no facts;
        column-level grants (``GRANT SELECT (a) ON t``) are not table grants and are skipped."""
        toks = list(stmt.tokens)
        i = 1
        if revoke and i < len(toks) and toks[i].upper == "GRANT":  # REVOKE GRANT OPTION FOR
            return
        privs: list[str] = []
        column_level = False
        while i < len(toks) and toks[i].upper != "ON":
            t = toks[i]
            if t.type == "L_PAREN":
                column_level = True
                while i < len(toks) and toks[i].type != "R_PAREN":
                    i += 1
            elif t.type != "COMMA" and t.upper != "PRIVILEGES":
                privs.append(t.text.lower())
            i += 1
        if i >= len(toks) or column_level:
            return  # GRANT role TO user, or a column-level grant
        i += 1
        targets: list[str] = []
        if i < len(toks) and toks[i].upper in ("SEQUENCE", "SCHEMA", "FUNCTION", "DATABASE"):
            return
        if i < len(toks) and toks[i].upper == "ALL":
            if i + 1 < len(toks) and toks[i + 1].upper == "TABLES":
                targets = list(self.tables)
            else:
                return  # ALL SEQUENCES / FUNCTIONS
            while i < len(toks) and toks[i].upper not in ("TO", "FROM"):
                i += 1
        else:
            if i < len(toks) and toks[i].upper == "TABLE":
                i += 1
            while i < len(toks) and toks[i].upper not in ("TO", "FROM"):
                name, i = _qualified_name(toks, i)
                if name is None:
                    raise self.error("expected a table name in GRANT", stmt.line)
                targets.append(self.known_table(name, stmt.line))
                if i < len(toks) and toks[i].type == "COMMA":
                    i += 1
        i += 1
        roles: list[str] = []
        while i < len(toks) and toks[i].upper not in ("WITH", "GRANTED", "CASCADE", "RESTRICT"):
            if toks[i].type != "COMMA" and toks[i].upper != "GROUP":
                roles.append(_role_name(toks[i]))
            i += 1
        expanded: list[str] = []
        for p in privs:
            if p == "all":
                expanded.extend(PRIVILEGES)
            elif p in PRIVILEGES:
                expanded.append(p)
            else:
                self.note(f"unknown table privilege '{p}' (noted: not granted here)", stmt.line)
        for tname in targets:
            for r in roles:
                for p in expanded:
                    if revoke:
                        self.grants.pop((tname, r, p), None)
                    else:
                        self.grants.setdefault((tname, r, p), stmt.line)

    # -- result ------------------------------------------------------------------------------
    def finish(self) -> SchemaInfo:
        for table, fk, line in self.pending_fks:
            target = self.tables[self.known_table(fk.ref_table, line)]
            ref_col = fk.ref_column
            if not ref_col:
                if len(target.primary_key) != 1:
                    self.note(
                        f"foreign key to '{fk.ref_table}' names no column and the table has "
                        "no known single-column primary key (noted: the key is not used)",
                        line,
                    )
                    continue
                ref_col = target.primary_key[0]
            if ref_col not in target.columns:
                if not target.partial:
                    self.note(
                        f"foreign key references unknown column '{fk.ref_table}.{ref_col}' "
                        "(noted: the key is not used)",
                        line,
                    )
                    continue
                target.columns[ref_col] = "unknown"
            if fk.column not in self.tables[table].columns:
                if not self.tables[table].partial:
                    self.note(
                        f"foreign key on unknown column '{table}.{fk.column}' (noted: the key "
                        "is not used)",
                        line,
                    )
                    continue
                self.tables[table].columns[fk.column] = "unknown"
            resolved = ForeignKey(fk.column, fk.ref_table, ref_col)
            if resolved not in self.tables[table].foreign_keys:
                self.tables[table].foreign_keys.append(resolved)
            self.fk_lines.append((table, resolved, line))
        for pol in self.policies:
            for clause, text in (("using", pol.using), ("with_check", pol.with_check)):
                if text is None:
                    continue
                try:
                    expr = parse_expression(text)
                except SqlglotError as e:
                    raise self.error(
                        f"cannot parse policy {clause.upper()} expression: {_short(e)}", pol.line
                    ) from None
                pol.exprs[clause] = expr
                for fn in sorted(_qualified_calls(expr) - self.functions):
                    self.note(
                        f"policy {pol.name} on {pol.table} calls {fn}(), defined outside this "
                        "script (noted)",
                        pol.line,
                    )
        return SchemaInfo(
            tables=self.tables,
            policies=self.policies,
            rls_enabled=dict(self.enabled),
            rls_forced=dict(self.forced),
            grants=dict(self.grants),
            foreign_keys=list(self.fk_lines),
            source=self.source,
            notes=sorted(self.notes, key=lambda n: n.line or 0),
        )


def _add_key(info: TableInfo, cols: list[str]) -> None:
    if cols and cols not in info.unique_keys and cols != info.primary_key:
        info.unique_keys.append(cols)


_MUST_PARSE = {
    ("CREATE", "TABLE"),
    ("CREATE", "UNLOGGED"),
    ("CREATE", "TEMP"),
    ("CREATE", "TEMPORARY"),
    ("ALTER", "TABLE"),
}


#: ALTER TABLE actions that carry no containment facts (kept as opaque commands by the parser).
_NO_FACT_ALTER = (
    "OWNER",
    "REPLICA",
    "CLUSTER",
    "ATTACH",
    "DETACH",
    "INHERIT",
    "NO",
    "OF",
    "NOT",
    "VALIDATE",
    "SET",
    "RESET",
    "ALTER",
    "RENAME",
    "DROP",
    "ENABLE",
    "DISABLE",
)


def _no_fact_alter(toks: tuple[Tok, ...]) -> bool:
    """``ALTER TABLE [IF EXISTS] [ONLY] name <action>`` whose action carries no facts we read
    (row level security forms are read before this is asked)."""
    i = 2
    while i < len(toks) and toks[i].upper in ("IF", "EXISTS", "ONLY"):
        i += 1
    _name, i = _qualified_name(list(toks), i)
    if i < len(toks) and toks[i].type == "STAR":
        i += 1
    return i < len(toks) and toks[i].upper in _NO_FACT_ALTER


def _creates_function(toks: tuple[Tok, ...]) -> bool:
    words = [t.upper for t in toks[:5]]
    return words[:1] == ["CREATE"] and ("FUNCTION" in words or "PROCEDURE" in words)


def _function_names(toks: tuple[Tok, ...]) -> set[str]:
    """``schema.name`` and ``name`` of a CREATE [OR REPLACE] FUNCTION statement."""
    words = [t.upper for t in toks]
    at = next((i for i, w in enumerate(words) if w in ("FUNCTION", "PROCEDURE")), None)
    if at is None:
        return set()
    parts: list[str] = []
    i = at + 1
    while i < len(toks) and toks[i].type != "L_PAREN":
        if toks[i].type != "DOT":
            parts.append(_tok_name(toks[i]))
        i += 1
    return {".".join(parts), parts[-1]} if parts else set()


def _qualified_calls(expr: exp.Expr) -> set[str]:
    """Schema-qualified function calls of an expression (``auth.uid()``,
    ``private.get_teams()``): platform functions a policy relies on."""
    out = set()
    for dot in expr.find_all(exp.Dot):
        if isinstance(dot.expression, exp.Func):
            name = function_name(dot.expression)
            out.add(f"{ident_name(dot.this)}.{name}")
    return out


def _error_line(e: Exception, stmt: Statement) -> int:
    """The script line of a parse error inside ``stmt``."""
    errors = getattr(e, "errors", None) or []
    for err in errors:
        line = err.get("line") if isinstance(err, dict) else None
        if isinstance(line, int) and line > 0:
            return stmt.line + line - 1
    return stmt.line


def _short(e: Exception) -> str:
    msg = str(e).strip().splitlines()
    return msg[0] if msg else type(e).__name__


def _tok_name(tok: Tok) -> str:
    """An identifier token: quoted names keep their case, others fold to lower case."""
    return tok.text if tok.type == "IDENTIFIER" else tok.text.lower()


def _role_name(tok: Tok) -> str:
    name = _tok_name(tok)
    return "public" if name == "public" and tok.type != "IDENTIFIER" else name


def _qualified_name(toks: list[Tok], i: int) -> tuple[str | None, int]:
    """Read ``[schema.]name`` at ``i``; return the last part and the next index."""
    if i >= len(toks):
        return None, i
    name = _tok_name(toks[i])
    i += 1
    while i + 1 < len(toks) and toks[i].type == "DOT":
        name = _tok_name(toks[i + 1])
        i += 2
    return name, i


def _has_sequence(toks: tuple[Tok, ...], words: tuple[str, ...]) -> bool:
    uppers = [t.upper for t in toks]
    n = len(words)
    return any(tuple(uppers[k : k + n]) == words for k in range(len(uppers) - n + 1))


def read_ddl(text: str, source: str = "schema.sql") -> SchemaInfo:
    """Read a PostgreSQL schema script into a :class:`SchemaInfo` (no facts: see
    :func:`policystrata.lower.schema.parse_schema`). A statement that does not parse is an
    :class:`InputError` at its ``file:line``."""
    reader = _Reader(text, source)
    try:
        statements = split_statements(text)
    except SqlglotError as e:
        what, span = describe_token_error(e, text)
        line = text.count("\n", 0, span[0]) + 1
        column = span[0] - (text.rfind("\n", 0, span[0]) + 1) + 1
        raise InputError(
            f"cannot tokenize: {what}", file=source, line=line, column=column
        ) from None
    for stmt in statements:
        reader.statement(stmt)
    return reader.finish()
