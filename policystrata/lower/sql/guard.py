"""Pass ``guard_read_only``: fail-closed read-only guard.

A statement is accepted only if it is exactly one SELECT or set operation (UNION / INTERSECT /
EXCEPT) with no write node anywhere (INSERT, UPDATE, DELETE, MERGE, also inside a CTE), no
``SELECT … INTO``, no ``FOR UPDATE / SHARE``, no DDL, transaction control, COPY, SET/RESET,
EXPLAIN, PREPARE/EXECUTE, LISTEN/NOTIFY (the parser keeps most of those as opaque commands,
which the ``parse`` pass already rejects), and no call to a denied function
(:data:`DENIED_FUNCTIONS`, :data:`DENIED_PREFIXES`, also when written as a ``U&"..."`` escaped
name; ``current_setting`` with a second argument that is not a literal). Each violation is a
``not_read_only`` finding with its span; the statement is then not analysed further. Literals
are literals: ``where kind = 'update'`` passes.

>>> from policystrata.lower.sql import lower_sql
>>> r = lower_sql("q", "select set_config('app.tenant_id', 'beta', true)")
>>> r.read_only, [f.reason for f in r.findings]
(False, ['calls denied function set_config()'])
>>> lower_sql("q", "select 1 from t where kind = 'update; delete'").read_only
True
>>> [f.reason for f in lower_sql("q", 'select U&"pg\\\\005fsleep"(30)').findings]
['calls denied function pg_sleep() as U&"pg\\\\005fsleep"']

This guard decides what is *read-only* (and so what static analysis goes on with); what may be
*executed* is decided by the allow-list of :mod:`policystrata.lower.sql.allowlist`, which is
stricter: a read-only statement that uses anything off that list is analysed but never sent.
"""

from __future__ import annotations

from policystrata.lower.sql.allowlist import unicode_escapes
from policystrata.lower.sql.context import Ctx, Halt
from policystrata.lower.sql.predicate_extract import literal_value
from policystrata.sql.adapter import exp, function_name, is_call

# The one list of functions a read-only analytics query may not call. Each either writes,
# changes session state, reads server files, talks to other servers, stalls or kills backends,
# or runs arbitrary SQL given as text.
DENIED_FUNCTIONS: frozenset[str] = frozenset(
    {
        # session / server state
        "set_config",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_promote",
        "pg_notify",
        "pg_logical_emit_message",
        "txid_current",
        "pg_current_xact_id",
        "nextval",
        "setval",
        "lastval",
        # timing / denial of service
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
        "pg_terminate_backend",
        "pg_cancel_backend",
        # server files
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "pg_file_write",
        "pg_file_rename",
        "pg_file_unlink",
        # arbitrary SQL given as text
        "query_to_xml",
        "query_to_xml_and_xmlschema",
        "query_to_xmlschema",
        "cursor_to_xml",
        "table_to_xml",
        "table_to_xml_and_xmlschema",
        "schema_to_xml",
        "database_to_xml",
    }
)
# Families denied by prefix: large objects, dblink, advisory locks, replication slots.
DENIED_PREFIXES: tuple[str, ...] = (
    "lo_",
    "dblink",
    "pg_advisory",
    "pg_try_advisory",
    "pg_create_",
    "pg_drop_replication",
    "pg_replication_",
)

# Node types that make a statement not read-only wherever they appear.
_WRITE_NODES: tuple[type[exp.Expr], ...] = tuple(
    t
    for t in (
        getattr(exp, name, None)
        for name in (
            "Insert",
            "Update",
            "Delete",
            "Merge",
            "Create",
            "Drop",
            "Alter",
            "Command",
            "Into",
            "Lock",
            "Copy",
            "Set",
            "Transaction",
            "Commit",
            "Rollback",
            "Use",
            "Pragma",
            "TruncateTable",
            "Grant",
            "Revoke",
            "LoadData",
            "Refresh",
            "Analyze",
            "Kill",
            "Cache",
            "Uncache",
            "Describe",
        )
    )
    if isinstance(t, type)
)


def is_denied_name(name: str) -> bool:
    """A function name on the deny list (exact or by family prefix).

    >>> is_denied_name("pg_sleep"), is_denied_name("lo_import"), is_denied_name("upper")
    (True, True, False)
    """
    return name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES)


def denied_reason(node: exp.Expr) -> str | None:
    """Why a function call is denied, or ``None``."""
    if not is_call(node):
        return None
    name = function_name(node)
    if is_denied_name(name):
        return f"calls denied function {name}()"
    if name == "current_setting":
        args = node.expressions if isinstance(node, exp.Anonymous) else []
        if args and literal_value(args[0]) is None:
            return "current_setting() with a non-literal setting name"
        if len(args) > 1 and literal_value(args[1]) is None:
            return "current_setting() with a non-literal second argument"
    return None


def guard_read_only(ctx: Ctx) -> None:
    """Reject anything but one side-effect-free SELECT; set ``ctx.read_only``."""
    tree = ctx.tree
    assert tree is not None
    problems: list[tuple[str, exp.Expr | tuple[int, int]]] = []
    if not isinstance(tree, exp.Select | exp.SetOperation):
        problems.append((f"{tree.key.upper()} statement is not a SELECT", tree))
    # U&"..." names: the parser reads U&"pg\005fsleep" as a column u and a quoted name, the
    # server as the escaped name pg_sleep; judge the name the server would call.
    for u in unicode_escapes(ctx.tokens, ctx.text):
        if u.identifier and u.decoded is not None and is_denied_name(u.decoded.lower()):
            problems.append((f"calls denied function {u.decoded.lower()}() as {u.written}", u.span))
    for node in tree.walk():
        if isinstance(node, _WRITE_NODES) and node is not tree:
            if isinstance(node, exp.Lock):
                problems.append(("SELECT … FOR UPDATE/SHARE takes row locks", node))
            elif isinstance(node, exp.Into):
                problems.append(("SELECT … INTO creates a table", node))
            else:
                problems.append((f"contains a {node.key.upper()} statement", node))
        reason = denied_reason(node)
        if reason:
            problems.append((reason, node))
    if problems:
        for reason, where in problems:
            if isinstance(where, tuple):
                ctx.finding("not_read_only", reason, span=where)
            else:
                ctx.finding("not_read_only", reason, where)
        ctx.read_only = False
        raise Halt
    ctx.read_only = True
    ctx.emit("sql_read_only", node=tree)
