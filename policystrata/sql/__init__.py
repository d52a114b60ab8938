"""The low SQL layer: every sqlglot call (:mod:`.adapter`), parser errors in words
(:mod:`.errors`) and the DDL model the domain model needs (:mod:`.ddl`). It imports nothing of
PolicyStrata but :mod:`policystrata.errors` and :mod:`policystrata.facts`; the lowering passes
(:mod:`policystrata.lower`) build on it, never the other way round."""
