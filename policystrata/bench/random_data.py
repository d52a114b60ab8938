"""Seeded random rows for a domain's tables: the data of the ``random_data_generation``
baseline (a team's randomized-data test: run the judged SQL and the fault-free SQL over random
rows and flag when the results differ).

The rows come from the schema alone (tables, column types, primary and unique keys, foreign
keys; parents before children, so every foreign key points at a generated row) and from the
policy (its principals' tenant ids are among the text values, so rows are visible under row
level security; dates fall in the ``SPAN_DAYS`` days before its ``as_of``); never from one
domain's column names. Deterministic: the same schema, policy, seed and row count give the
same INSERT text (rendered by sqlglot in the domain's dialect).
Tables the script cannot insert into are skipped: views, Distributed tables and columns of an
unknown type (ClickHouse aggregate states, filled by their materialized views).

>>> from policystrata.model import load_domain
>>> d = load_domain("support_saas")
>>> sql = random_rows_sql(d, seed=7, rows=3)
>>> sql == random_rows_sql(d, seed=7, rows=3), sql == random_rows_sql(d, seed=8, rows=3)
(True, False)
>>> sql.splitlines()[0].startswith("INSERT INTO tenants")
True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from typing import Any

from sqlglot import exp

from policystrata.model import Domain
from policystrata.sql.adapter import parse_one, split_statements, table_name

#: Text values besides the tenants' (a small pool, so equality filters and joins still match;
#: a text key's values are the pool's, one row each).
TOKENS = ("r0", "r1", "r2", "r3")
#: Dates and times fall in the days before the policy's ``as_of`` (where its time ranges are).
SPAN_DAYS = 120


def _kind(sql_type: str) -> str | None:
    t = sql_type.lower()
    if t in ("unknown", ""):
        return None
    if "bool" in t:
        return "bool"
    if "uuid" in t:
        return "uuid"
    if "timestamp" in t or "datetime" in t:
        return "timestamp"
    if "date" in t:
        return "date"
    if "int" in t or "serial" in t:
        return "int"
    if any(k in t for k in ("numeric", "decimal", "float", "double", "real")):
        return "number"
    return "text"


def _order(tables: dict[str, Any]) -> list[str]:
    """Tables parents first (foreign keys), ties by name."""
    done: list[str] = []
    pending = sorted(tables)
    while pending:
        ready = [
            t
            for t in pending
            if all(
                fk.ref_table in done or fk.ref_table == t or fk.ref_table not in tables
                for fk in tables[t].foreign_keys
            )
        ]
        ready = ready or pending[:1]  # a cycle: break it at the first name
        for t in ready:
            done.append(t)
            pending.remove(t)
    return done


def random_rows_sql(domain: Domain, seed: int, rows: int = 40) -> str:
    """INSERT statements (one per table, ``;``-terminated lines) of ``rows`` random rows per
    table, from ``seed`` (see the module docstring)."""
    schema = domain.schema
    dialect = str(getattr(domain, "dialect", None) or "postgres")
    tenants = sorted({t for p in domain.policy.principals.values() for t in p.tenant_ids})
    pool = [*tenants, *TOKENS]
    # the tenant ids a typed column can hold (an integer or uuid tenant key's values)
    typed: dict[str, list[Any]] = {
        "int": [int(t) for t in tenants if t.lstrip("-").isdigit()],
        "uuid": [t for t in tenants if _is_uuid(t)],
    }
    start = domain.policy.as_of - dt.timedelta(days=SPAN_DAYS)
    skip = {v for v, _s, _l in schema.views} | set(schema.distributed)
    qualified = _created_as(domain, dialect)
    values: dict[tuple[str, str], list[Any]] = {}  # (table, column) -> generated values
    out: list[str] = []
    for name in _order(schema.tables):
        table = schema.tables[name]
        kinds = {c: _kind(t) for c, t in table.columns.items()}
        if name in skip or table.partial or not kinds or None in kinds.values():
            continue
        digest = hashlib.sha256(f"{seed}\0{name}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        fks = {fk.column: fk for fk in table.foreign_keys}
        keys = [k for k in [table.primary_key, *table.unique_keys] if k]
        unique = {k[0] for k in keys if len(k) == 1}
        seen: list[set[tuple[Any, ...]]] = [set() for _ in keys]
        cols = list(table.columns)
        made: list[tuple[Any, ...]] = []
        # a text key takes its values from the pool (so children's foreign keys mostly reach
        # the tenants' rows): as many rows as the pool has values
        n = rows if not any(kinds[c] == "text" for c in unique) else min(rows, len(pool))
        for i in range(n):
            row: dict[str, Any] = {}
            for c in cols:
                row[c] = _value(rng, kinds[c], c, i, pool, typed, fks.get(c), values, unique, start)
                nullable = c not in table.not_null and c not in unique and c not in fks
                if nullable and rng.random() < 0.15:
                    row[c] = None
            if any(fks[c].ref_table in schema.tables and row[c] is None for c in fks) and any(
                c in table.not_null for c in fks if row[c] is None
            ):
                continue  # a required parent with no rows
            key_vals = [tuple(row[c] for c in k) for k in keys]
            if any(kv in s for kv, s in zip(key_vals, seen, strict=True)):
                continue
            for kv, s in zip(key_vals, seen, strict=True):
                s.add(kv)
            made.append(tuple(row[c] for c in cols))
        for j, c in enumerate(cols):
            values[(name, c)] = [r[j] for r in made]
        if made:
            stmt = exp.insert(exp.values(made), qualified.get(name, name), columns=cols)
            out.append(stmt.sql(dialect) + ";")
    return "\n".join(out) + ("\n" if out else "")


def _value(
    rng: random.Random,
    kind: str | None,
    column: str,
    i: int,
    pool: list[str],
    typed: dict[str, list[Any]],
    fk: Any,
    values: dict[tuple[str, str], list[Any]],
    unique: set[str],
    start: dt.date,
) -> Any:
    if fk is not None:
        parents = [v for v in values.get((fk.ref_table, fk.ref_column), []) if v is not None]
        return rng.choice(parents) if parents else None
    if column in unique:  # a key: distinct by construction (text keys start with the pool)
        if kind == "int":
            return i + 1
        if kind == "text":
            return pool[i]
        if kind == "uuid":
            return typed["uuid"][i] if i < len(typed["uuid"]) else _uuid(rng)
    if kind in typed and typed[kind] and rng.random() < 0.5:  # a tenant's id, half the time
        return rng.choice(typed[kind])
    if kind == "uuid":
        return _uuid(rng)
    if kind == "int":
        return rng.randint(0, 1000)
    if kind == "number":
        return round(rng.uniform(0, 1000), 2)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "date":
        return start + dt.timedelta(days=rng.randrange(SPAN_DAYS))
    if kind == "timestamp":
        return dt.datetime.combine(
            start + dt.timedelta(days=rng.randrange(SPAN_DAYS)), dt.time(rng.randrange(24))
        )
    return rng.choice(pool)


def _created_as(domain: Domain, dialect: str) -> dict[str, str]:
    """Each table's name as schema.sql creates it (``app.stores``: the schema reader keeps the
    bare name)."""
    path = domain.sources.get("schema")
    if path is None:
        return {}
    out: dict[str, str] = {}
    for stmt in split_statements(path.read_text(encoding="utf-8"), dialect):
        try:
            tree = parse_one(stmt.text, dialect)
        except Exception:
            continue  # what does not parse creates no table we insert into
        if isinstance(tree, exp.Create) and isinstance(tree.this, exp.Schema):
            table = tree.this.this
            if isinstance(table, exp.Table) and table.db:
                out[table_name(table)] = f"{table.db}.{table_name(table)}"
    return out


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
