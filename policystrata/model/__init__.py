"""Domain model: pydantic models of policy.yaml, surfaces.yaml and suites, YAML loading with
line numbers, referential integrity, and :class:`Domain` (policy + surfaces + schema).

>>> d = load_domain("support_saas")
>>> sorted(d.policy.roles)
['analyst', 'finance_admin']
"""

from policystrata.model.domain import Domain, MetricAgg, load_domain, parse_metric_agg, split_column
from policystrata.model.policy import Dimension, Metric, Policy, Principal, Role, TimeRange
from policystrata.model.suite import MatrixEntry, Suite, Task, load_suite, load_suites
from policystrata.model.surfaces import Contract, Surfaces

__all__ = [
    "Contract",
    "Dimension",
    "Domain",
    "MatrixEntry",
    "Metric",
    "MetricAgg",
    "Policy",
    "Principal",
    "Role",
    "Suite",
    "Surfaces",
    "Task",
    "TimeRange",
    "load_domain",
    "load_suite",
    "load_suites",
    "parse_metric_agg",
    "split_column",
]
