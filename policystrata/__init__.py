"""PolicyStrata: a deterministic regression gate for LLM data-agent stacks."""

__version__ = "2.0.0.dev0"
