"""Lowering passes: each turns one artifact into facts, one concern per module.

- :mod:`policystrata.lower.policy` -- Domain -> policy facts (``rules/decl_policy.dl``)
- :mod:`policystrata.lower.schema` -- schema.sql -> tables, keys, FKs, RLS, policies, grants
- :mod:`policystrata.lower.ir` -- SemanticQuery -> ``ir_*`` case facts (``rules/decl_case.dl``)
- :mod:`policystrata.lower.sql` -- SQL text -> ``sql_*`` case facts

Import the pass you need from its module (this package imports nothing eagerly).
"""
