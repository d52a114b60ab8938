"""``strata scan`` over imported traces, ``strata doctor``, and the scan's scaffolds."""
