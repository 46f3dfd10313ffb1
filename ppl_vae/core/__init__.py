"""The toolkit's foundations: user errors (``errors``), registry lookups (``registry``), option
checking (``options``), random streams (``rng``) and the trace-and-replay machinery
(``tracing``)."""
