"""A domain's ``schema.sql`` / ``seed.sql`` made loadable by the unprivileged owner role.

Loading never runs as a superuser and never needs CREATEROLE: the owner role
(``strata_owner``) runs the scripts. A published schema creates its application role itself
(``DO $$ ... CREATE ROLE policystrata_app LOGIN PASSWORD ... $$``) and grants to it; roles are
cluster-wide and belong to PolicyStrata, so those statements are *mapped* onto PolicyStrata's own
app role instead of being run:

- ``CREATE`` / ``ALTER`` / ``DROP ROLE|USER|GROUP`` of the app role (``policystrata_app`` or
  ``strata_app``): not run (the role exists, created by PolicyStrata with its own password).
- a ``DO`` block whose body only creates or alters the app role (checked token by token: role
  statements for the app role, ``IF [NOT] EXISTS (SELECT ... FROM pg_roles ...)``, ``BEGIN`` /
  ``END`` / ``ELSE`` / ``EXCEPTION WHEN ... THEN``, ``RAISE NOTICE``): not run. A ``DO`` block
  that manages roles in any other way cannot be classified and is refused (an input error at
  its line). A ``DO`` block that does not touch roles runs as the owner, like any statement.
- the app role named anywhere else (``GRANT ... TO policystrata_app``, ``CREATE POLICY ... TO
  policystrata_app``): renamed to PolicyStrata's app role.
- a role statement for any other role: refused (an input error): create such roles outside.

Each mapping is a note for the user. Statements are found with sqlglot's tokenizer, never by
matching text; a ``DO`` body (sqlglot keeps it as an opaque command) is tokenized on its own.

>>> script = prepare_script(
...     "DO $$ BEGIN CREATE ROLE policystrata_app LOGIN PASSWORD 'x'; END $$;\\n"
...     "CREATE TABLE t (id int);\\nGRANT SELECT ON t TO policystrata_app;\\n", "schema.sql")
>>> print(script.text)
CREATE TABLE t (id int);
GRANT SELECT ON t TO strata_app;
>>> script.relations
frozenset({'t'})
>>> for note in script.notes: print(note)
schema.sql:1: DO block creating the app role policystrata_app not run (strata_app is used)
schema.sql: policystrata_app is PolicyStrata's app role strata_app (line 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from policystrata.errors import InputError
from policystrata.sql.adapter import (
    SqlglotError,
    Statement,
    Tok,
    exp,
    parse_one,
    split_statements,
    tokenize,
)

PUBLISHED_APP_ROLES = ("policystrata_app",)
"""App role names of the published line (``../shared/COMPAT.md`` §7) mapped onto ours."""

_ROLE_WORDS = ("ROLE", "USER", "GROUP")

#: Words a DO block that only sets up the app role may contain (besides strings, numbers,
#: punctuation and the role's own name).
_SETUP_WORDS = frozenset(
    {
        "BEGIN",
        "END",
        "IF",
        "NOT",
        "EXISTS",
        "SELECT",
        "FROM",
        "WHERE",
        "THEN",
        "ELSE",
        "ELSIF",
        "EXCEPTION",
        "WHEN",
        "OTHERS",
        "DUPLICATE_OBJECT",
        "RAISE",
        "NOTICE",
        "NULL",
        "AND",
        "OR",
        "CREATE",
        "ALTER",
        "ROLE",
        "USER",
        "WITH",
        "LOGIN",
        "NOLOGIN",
        "PASSWORD",
        "ENCRYPTED",
        "NOSUPERUSER",
        "NOCREATEDB",
        "NOCREATEROLE",
        "INHERIT",
        "NOINHERIT",
        "NOREPLICATION",
        "NOBYPASSRLS",
        "CONNECTION",
        "LIMIT",
        "VALID",
        "UNTIL",
        "PG_CATALOG",
        "PG_ROLES",
        "PG_USER",
        "PG_AUTHID",
        "ROLNAME",
        "USENAME",
        "LANGUAGE",
        "PLPGSQL",
        "DO",
        "1",
    }
)
_PUNCTUATION = frozenset({"(", ")", ";", ",", ".", "=", "*"})
_WORD_TYPES = ("VAR", "IDENTIFIER")


@dataclass
class LoadScript:
    """What the owner role runs, the notes on what was mapped, and the relations it creates."""

    text: str
    notes: list[str] = field(default_factory=list)
    relations: frozenset[str] = frozenset()


def _name(tok: Tok) -> str:
    """A role or relation name token as PostgreSQL reads it (quoted names keep their case)."""
    return tok.text if tok.type == "IDENTIFIER" else tok.text.lower()


def _is_word(tok: Tok) -> bool:
    return tok.type in _WORD_TYPES or tok.text.isidentifier()


def prepare_script(
    text: str,
    source: str,
    *,
    app_role: str = "strata_app",
    aliases: tuple[str, ...] = PUBLISHED_APP_ROLES,
) -> LoadScript:
    """Map the script's role statements onto PolicyStrata's roles (see the module docstring).

    Raises :class:`InputError` (``source:line``) for role statements that cannot be mapped.
    A script the tokenizer cannot read is run as written (as the owner role), with a note.
    """
    app_names = {app_role, *aliases}
    try:
        statements = split_statements(text)
    except SqlglotError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        note = f"{source}: not tokenized ({first}); it runs as written, as the owner role"
        return LoadScript(text, [note])
    out: list[str] = []
    notes: list[str] = []
    renamed: dict[str, list[int]] = {}
    relations: set[str] = set()
    for stmt in statements:
        kept = _map_statement(stmt, source, app_role, app_names, notes, renamed)
        if kept is not None:
            out.append(kept)
            relations |= _created_relations(stmt)
    for alias, lines in renamed.items():
        at = ", ".join(str(n) for n in lines)
        line_word = "line" if len(lines) == 1 else "lines"
        notes.append(f"{source}: {alias} is PolicyStrata's app role {app_role} ({line_word} {at})")
    return LoadScript("".join(f"{s};\n" for s in out).rstrip("\n"), notes, frozenset(relations))


def _map_statement(
    stmt: Statement,
    source: str,
    app_role: str,
    app_names: set[str],
    notes: list[str],
    renamed: dict[str, list[int]],
) -> str | None:
    toks = list(stmt.tokens)
    words = [t.upper for t in toks]
    where = f"{source}:{stmt.line}"
    # CREATE / ALTER / DROP ROLE|USER|GROUP
    if len(toks) >= 3 and words[0] in ("CREATE", "ALTER", "DROP") and words[1] in _ROLE_WORDS:
        names = _role_names(toks[2:], drop=words[0] == "DROP")
        others = [n for n in names if n not in app_names]
        if others or not names:
            raise InputError(
                f"{words[0]} {words[1]} {', '.join(others) or '?'}: PolicyStrata loads the schema "
                "as an unprivileged owner role (no CREATEROLE) and maps only the app role "
                f"({', '.join(sorted(app_names))}) onto its own; create other roles outside the "
                "domain's SQL",
                file=source,
                line=stmt.line,
            )
        notes.append(f"{where}: {words[0]} {words[1]} {names[0]} not run ({app_role} is used)")
        return None
    if words and words[0] == "DO":
        return _map_do_block(stmt, toks, source, app_role, app_names, notes)
    # the app role named anywhere else: rename it
    pieces: list[str] = []
    pos = stmt.start
    text = stmt.text
    changed = False
    for tok in toks:
        if _is_word(tok) and _name(tok) in app_names and _name(tok) != app_role:
            pieces.append(text[pos - stmt.start : tok.start - stmt.start])
            pieces.append(app_role)
            pos = tok.end
            changed = True
    if not changed:
        return text
    pieces.append(text[pos - stmt.start :])
    alias = next(_name(t) for t in toks if _is_word(t) and _name(t) in app_names - {app_role})
    renamed.setdefault(alias, []).append(stmt.line)
    return "".join(pieces)


def _role_names(toks: list[Tok], *, drop: bool) -> list[str]:
    """Role names at the start of a role statement (``DROP ROLE IF EXISTS a, b``)."""
    names: list[str] = []
    i = 0
    if drop and len(toks) >= 2 and toks[0].upper == "IF" and toks[1].upper == "EXISTS":
        i = 2
    while i < len(toks):
        if not _is_word(toks[i]):
            break
        names.append(_name(toks[i]))
        if not drop or i + 1 >= len(toks) or toks[i + 1].text != ",":
            break
        i += 2
    return names


def _do_body(tok_text: str) -> str | None:
    """The dollar-quoted (or quoted) body of a DO statement's remainder text."""
    rest = tok_text.strip()
    for word in ("LANGUAGE", "PLPGSQL"):
        if rest.upper().startswith(word):
            rest = rest[len(word) :].strip()
    if rest.startswith("$"):
        end = rest.find("$", 1)
        if end < 0:
            return None
        tag = rest[: end + 1]
        close = rest.find(tag, end + 1)
        return rest[end + 1 : close] if close >= 0 else None
    if rest.startswith("'") and rest.endswith("'"):
        return rest[1:-1].replace("''", "'")
    return None


def _map_do_block(
    stmt: Statement,
    toks: list[Tok],
    source: str,
    app_role: str,
    app_names: set[str],
    notes: list[str],
) -> str | None:
    body = _do_body(" ".join(t.text for t in toks[1:]))
    body_toks: list[Tok] | None = None
    if body is not None:
        try:
            body_toks = tokenize(body)
        except SqlglotError:
            body_toks = None
    words = [t.upper for t in body_toks] if body_toks is not None else []
    touches_roles = body_toks is None or any(
        w in ("GRANT", "REVOKE", "EXECUTE", "AUTHORIZATION")
        or (w in ("CREATE", "ALTER", "DROP", "SET", "RESET") and nxt in _ROLE_WORDS)
        for w, nxt in zip(words, [*words[1:], ""], strict=True)
    )
    if not touches_roles:
        return stmt.text  # an ordinary DO block: it runs as the owner role
    roles = _setup_roles(body_toks or [])
    if body_toks is None or roles is None or not roles or not roles <= app_names:
        raise InputError(
            "a DO block that manages roles in a way PolicyStrata cannot map onto its own roles "
            "(it only maps a block that creates or alters the app role "
            f"{', '.join(sorted(app_names))}); it is not run, because loading never runs as a "
            "superuser: move the role setup out of the domain's SQL",
            file=source,
            line=stmt.line,
        )
    notes.append(
        f"{source}:{stmt.line}: DO block creating the app role {', '.join(sorted(roles))} "
        f"not run ({app_role} is used)"
    )
    return None


def _setup_roles(toks: list[Tok]) -> set[str] | None:
    """The roles a DO body creates or alters, when it does nothing else (else None)."""
    roles: set[str] = set()
    for i, tok in enumerate(toks):
        word = tok.upper
        if tok.type in ("STRING", "NUMBER") or tok.text in _PUNCTUATION:
            continue
        prev = toks[i - 1].upper if i > 0 else ""
        before = toks[i - 2].upper if i > 1 else ""
        if prev in ("ROLE", "USER") and before in ("CREATE", "ALTER") and _is_word(tok):
            roles.add(_name(tok))
            continue
        if word in _SETUP_WORDS:
            continue
        return None
    # role names compared with rolname / usename must be the same roles
    for i, tok in enumerate(toks):
        compared = i + 2 < len(toks) and toks[i + 1].text == "=" and toks[i + 2].type == "STRING"
        if tok.upper in ("ROLNAME", "USENAME") and compared:
            roles.add(toks[i + 2].text)
    return roles


def _created_relations(stmt: Statement) -> set[str]:
    """Tables and views a statement creates (unqualified or in ``public``)."""
    words = [t.upper for t in stmt.tokens[:6]]
    if not words or words[0] != "CREATE" or not ({"TABLE", "VIEW"} & set(words)):
        return set()
    try:
        tree = parse_one(stmt.text)
    except (SqlglotError, RecursionError):
        return set()
    if not isinstance(tree, exp.Create) or str(tree.args.get("kind", "")).upper() not in (
        "TABLE",
        "VIEW",
    ):
        return set()
    target = tree.this
    table = target.this if isinstance(target, exp.Schema) else target
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        return set()
    schema = table.args.get("db")
    if schema is not None and schema.name.lower() != "public":
        return set()
    ident = table.this
    return {ident.name if ident.quoted else ident.name.lower()}
