"""Reports of evaluated runs: comparison tables, figures, pictures and anomaly scores."""

from .tables import (
    KHAT_BAD,
    RunResult,
    comparison_table,
    from_bounds,
    gap,
    read_metrics,
    to_csv,
    to_markdown,
    write_comparison,
)

__all__ = [
    "KHAT_BAD",
    "RunResult",
    "comparison_table",
    "from_bounds",
    "gap",
    "read_metrics",
    "to_csv",
    "to_markdown",
    "write_comparison",
]
