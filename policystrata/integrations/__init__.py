"""Imports from other tools' semantic layers (dbt Semantic Layer / MetricFlow)."""
