"""Benchmark half of PolicyStrata: suites of cases, batch runs over the reference stack with
fault injection, honest scoring (killed / survived / equivalent / stillborn / false positives),
witness minimization, and the ``strata run`` / ``summarize`` / ``demo`` commands.

The detector never sees what this package knows about a case (its fault, labels, surface
versions): :mod:`policystrata.bench.runner` hands the :class:`~policystrata.check.Checker` only
the artifacts the stack produced, and compares labels after detection.
"""
