"""The Datalog core: rule language, static checker, pyDatalog backend, proofs, proof checker.

>>> from policystrata.engine import Engine, check_proof, parse_program
>>> from policystrata.facts import Fact, FactSet
>>> prog = parse_program('''
... .decl sql_reads(case, table)
... .decl tenant_owned(table)
... .decl tenant_scoped(case, table)
... @id compiler.tenant_scope_missing
... @message "query reads {T} without a tenant filter"
... violation(C, T) :- sql_reads(C, T), tenant_owned(T), !tenant_scoped(C, T).
... ''', source="rules/compiler.dl")
>>> policy = FactSet(); _ = policy.add("tenant_owned", "accounts")
>>> engine = Engine(prog, policy)
>>> case = FactSet(); _ = case.add("sql_reads", "c1", "accounts")
>>> result = engine.evaluate(case)
>>> result.atoms("violation")
[('c1', 'accounts')]
>>> proof = result.prove(Fact("violation", ("c1", "accounts")))
>>> proof.message
'query reads accounts without a tenant filter'
>>> check_proof(proof, prog, result.fact_lookup)
"""

from policystrata.engine.ast import Decl, Program, Rule
from policystrata.engine.engine import Engine, Result
from policystrata.engine.errors import EvaluationTimeout, ProofError, RuleError, RuleErrors
from policystrata.engine.parser import load_program, parse_program, parse_texts
from policystrata.engine.proof import PROOF_NODE_SCHEMA, WILDCARD, ProofNode, proof_node_schema
from policystrata.engine.proofcheck import FactLookup, check_proof

__all__ = [
    "PROOF_NODE_SCHEMA",
    "WILDCARD",
    "Decl",
    "Engine",
    "EvaluationTimeout",
    "FactLookup",
    "Program",
    "ProofError",
    "ProofNode",
    "Result",
    "Rule",
    "RuleError",
    "RuleErrors",
    "check_proof",
    "load_program",
    "parse_program",
    "parse_texts",
    "proof_node_schema",
]
