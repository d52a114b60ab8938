"""schema.sql -> SchemaInfo and schema / RLS facts."""

from __future__ import annotations

import pytest

from policystrata.errors import InputError
from policystrata.facts import Fact
from policystrata.lower.schema import parse_schema
from policystrata.paths import domains_dir
from policystrata.sql.ddl import ForeignKey

SCHEMA = """\
-- a comment; with a semicolon
CREATE TABLE tenants (id text PRIMARY KEY, name text NOT NULL);
CREATE TABLE public.accounts (
    id bigint,
    tenant_id text NOT NULL REFERENCES tenants (id),
    legacy_tenant_id text,
    region varchar(20),
    customer_email text,
    balance numeric(12, 2),
    created_at timestamp with time zone,
    "MixedCase" int,
    CONSTRAINT accounts_pk PRIMARY KEY (id)
);
CREATE TABLE invoices (
    id int4 PRIMARY KEY,
    account_id bigint,
    tenant_id text,
    note text DEFAULT 'x;y',
    FOREIGN KEY (account_id) REFERENCES accounts (id)
);
CREATE TABLE notes (id int PRIMARY KEY, invoice_id int REFERENCES invoices);
ALTER TABLE notes ADD CONSTRAINT notes_tenant_fk FOREIGN KEY (invoice_id) REFERENCES invoices (id);
CREATE INDEX accounts_tenant ON accounts (tenant_id);
CREATE ROLE strata_app;
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE ONLY public.accounts FORCE ROW LEVEL SECURITY;
ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoices FORCE ROW LEVEL SECURITY;
ALTER TABLE invoices NO FORCE ROW LEVEL SECURITY;
CREATE POLICY acc_iso ON accounts AS PERMISSIVE FOR SELECT TO strata_app, reporting
    USING (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY acc_write ON accounts AS RESTRICTIVE FOR INSERT
    WITH CHECK (tenant_id = current_setting('app.tenant_id')::text AND region IN ('eu', 'us'));
CREATE POLICY inv_open ON invoices USING (true);
CREATE POLICY inv_or ON invoices FOR ALL TO PUBLIC
    USING (legacy_tenant_id = 'acme' OR tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT ON accounts, invoices TO strata_app;
GRANT ALL PRIVILEGES ON TABLE tenants TO admin;
REVOKE DELETE ON tenants FROM admin;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO auditor;
GRANT SELECT (id) ON notes TO strata_app;
GRANT strata_app TO someone;
"""


def facts(text: str = SCHEMA) -> set[str]:
    return {f.render() for f in parse_schema(text).facts}


def test_tables_in_creation_order_with_types_and_keys() -> None:
    info = parse_schema(SCHEMA)
    assert list(info.tables) == ["tenants", "accounts", "invoices", "notes"]
    acc = info.tables["accounts"]
    assert acc.columns == {
        "id": "bigint",
        "tenant_id": "text",
        "legacy_tenant_id": "text",
        "region": "varchar",
        "customer_email": "text",
        "balance": "numeric",
        "created_at": "timestamptz",
        "MixedCase": "integer",
    }
    assert acc.primary_key == ["id"]
    assert acc.foreign_keys == [ForeignKey("tenant_id", "tenants", "id")]
    assert acc.line == 3
    assert info.tables["invoices"].columns["id"] == "integer"
    assert info.tables["invoices"].foreign_keys == [ForeignKey("account_id", "accounts", "id")]
    # REFERENCES without a column list points at the primary key; the ALTER adds the same FK
    assert info.tables["notes"].foreign_keys == [ForeignKey("invoice_id", "invoices", "id")]


def test_schema_facts() -> None:
    fs = facts()
    for expected in [
        'table("accounts")',
        'table_column("accounts", "created_at", "timestamptz")',
        'primary_key("accounts", "id")',
        'fk("accounts", "tenant_id", "tenants", "id")',
        'fk("invoices", "account_id", "accounts", "id")',
        'fk("notes", "invoice_id", "invoices", "id")',
        'rls_enabled("accounts")',
        'rls_enabled("invoices")',
        'rls_forced("accounts")',
        'rls_policy("accounts", "acc_iso", "select", true)',
        'rls_policy("accounts", "acc_write", "insert", false)',
        'rls_policy("invoices", "inv_open", "all", true)',
        'rls_policy_role("accounts", "acc_iso", "strata_app")',
        'rls_policy_role("accounts", "acc_iso", "reporting")',
        'rls_policy_role("accounts", "acc_write", "public")',
        'rls_policy_role("invoices", "inv_or", "public")',
        'rls_policy_pred("accounts", "acc_iso", "using", "tenant_id", "=", "setting", '
        '"app.tenant_id", "guaranteed")',
        'rls_policy_pred("accounts", "acc_write", "with_check", "tenant_id", "=", "setting", '
        '"app.tenant_id", "guaranteed")',
        'rls_policy_pred("accounts", "acc_write", "with_check", "region", "in", "literal", '
        '"eu", "guaranteed")',
        'rls_policy_pred("invoices", "inv_or", "using", "legacy_tenant_id", "=", "literal", '
        '"acme", "possible")',
        'rls_policy_pred("invoices", "inv_or", "using", "tenant_id", "=", "setting", '
        '"app.tenant_id", "possible")',
        'rls_policy_always_true("invoices", "inv_open")',
        'table_grant("accounts", "strata_app", "select")',
        'table_grant("invoices", "strata_app", "select")',
        'table_grant("tenants", "admin", "select")',
        'table_grant("tenants", "admin", "truncate")',
        'table_grant("notes", "auditor", "select")',
    ]:
        assert expected in fs, expected
    assert 'rls_forced("invoices")' not in fs  # NO FORCE undoes FORCE
    assert 'table_grant("tenants", "admin", "delete")' not in fs  # revoked
    assert 'table_grant("notes", "strata_app", "select")' not in fs  # column-level only
    assert not any(f.startswith('rls_policy_always_true("accounts"') for f in fs)


def test_provenance_lines() -> None:
    info = parse_schema(SCHEMA)
    [p] = info.facts.provenance(Fact("table", ("invoices",)))
    assert str(p) == "schema.sql:14"
    [p] = info.facts.provenance(Fact("rls_forced", ("accounts",)))
    assert p.line == 26
    [p] = info.facts.provenance(Fact("rls_policy", ("accounts", "acc_iso", "select", True)))
    assert p.line == 30


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("CREATE TABLE a (id int);\n\nSELEC 1;", 3, "cannot parse"),
        ("CREATE TABLE a (id int);\nCREATE TABLE b id int);", 2, "cannot parse"),
        ("CREATE TABLE a (id int);\nALTER TABLE a FROB ROW LEVEL SECURITY;", 2, "ALTER"),
        ("CREATE TABLE a (id int);\nCREATE POLICY p ON a USING (id = 1", 2, "parenthes"),
        ("CREATE TABLE a (id int);\nCREATE POLICY p ON a FOR FROB USING (true);", 2, "FROB"),
        ("CREATE TABLE a (id int);\nCREATE TABLE a (id int);", 2, "twice"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, needle: str) -> None:
    with pytest.raises(InputError) as info:
        parse_schema(text, source="dom/schema.sql")
    assert info.value.file == "dom/schema.sql"
    assert info.value.line == line
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("CREATE TABLE a (id int);\n\nALTER TABLE nope ENABLE ROW LEVEL SECURITY;", 3, "nope"),
        ("CREATE TABLE a (id int, b int REFERENCES missing (id));", 1, "missing"),
        ("CREATE TABLE accounts (id int);\nGRANT SELECT ON accountz TO x;", 2, "accounts'?"),
        (
            "CREATE TABLE a (id int);\nALTER TABLE a OWNER TO x;\nALTER TABLE a FROB x;",
            3,
            "not read",
        ),
        ("CREATE TABLE a (id int);\nALTER POLICY p ON a RENAME TO q;", 2, "ALTER POLICY"),
    ],
)
def test_references_to_what_the_script_never_defines_are_notes(
    text: str, line: int, needle: str
) -> None:
    """Migration dumps ALTER, grant on and reference tables they never create: noted at
    file:line (with "did you mean" for a near-identical created name), never fatal."""
    info = parse_schema(text, source="dom/schema.sql")
    [note] = info.notes
    assert (note.file, note.line) == ("dom/schema.sql", line)
    assert needle in str(note)


def test_builtin_support_saas_schema_parses() -> None:
    path = domains_dir() / "support_saas" / "schema.sql"
    if not path.exists():
        pytest.skip("support_saas schema not present yet")
    info = parse_schema(path.read_text(), source=str(path))
    assert "accounts" in info.tables
    assert {"tenant_id", "legacy_tenant_id", "region", "customer_email"} <= set(
        info.tables["accounts"].columns
    )
    fs = {f.render() for f in info.facts}
    assert 'table_grant("accounts", "strata_app", "select")' in fs
    assert (
        'rls_policy_pred("accounts", "tenant_isolation_accounts", "using", "tenant_id", "=", '
        '"setting", "app.tenant_id", "guaranteed")' in fs
    )
    for t in info.tables:
        assert f'rls_enabled("{t}")' in fs
        assert f'rls_forced("{t}")' in fs
    # children are scoped through their parents: the EXISTS policy, read as a query
    assert 'rls_query_exists("invoices", "tenant_isolation_invoices", "s0", "s1")' in fs
    assert (
        'rls_query_pred("invoices", "tenant_isolation_invoices", "s1", "a", "tenant_id", "=", '
        '"setting", "app.tenant_id", "guaranteed")' in fs
    )
    assert (
        'rls_query_eq("invoices", "tenant_isolation_invoices", "s1", "s", "id", "invoices", '
        '"subscription_id")' in fs
    )


def test_unique_constraints_and_indexes_are_keys() -> None:
    info = parse_schema(
        "CREATE TABLE t (a int UNIQUE, b int, c int, PRIMARY KEY (a, b), UNIQUE (b, c));\n"
        "CREATE UNIQUE INDEX t_c ON t (c);\nCREATE UNIQUE INDEX t_expr ON t (lower(b::text));\n"
        "CREATE INDEX t_b ON t (b);\nALTER TABLE t ADD CONSTRAINT u UNIQUE (c, a);"
    )
    assert info.tables["t"].unique_keys == [["a"], ["b", "c"], ["c"], ["c", "a"]]
    keys = sorted(f.render() for f in info.facts.by_pred("unique_key"))
    assert keys[:3] == [
        'unique_key("t", "unique1", "a")',
        'unique_key("t", "unique2", "b")',
        'unique_key("t", "unique2", "c")',
    ]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            "CREATE TABLE a (id int);\nCREATE TABLE b (\n  id int int int,\n  x int);",
            (3, 10),
            "cannot parse statement: expected ')' near 'int'",
        ),
        (
            'CREATE TABLE a (id int);\nCREATE TABLE "b (id int);',
            (2, 14),
            'cannot tokenize: the quoted name opened here is never closed (missing ")',
        ),
    ],
)
def test_parse_errors_name_line_column_and_what_was_expected(
    text: str, where: tuple[int, int], message: str
) -> None:
    with pytest.raises(InputError) as info:
        parse_schema(text, source="schema.sql")
    assert (info.value.line, info.value.column) == where
    assert info.value.message == message
    assert "Line " not in str(info.value) and "<class" not in str(info.value)
