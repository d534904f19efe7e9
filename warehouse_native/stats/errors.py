"""Error type raised by the statistics layer for unusable *inputs*.

Data-driven edge cases (too few units, zero variance, a zero control mean...) never raise:
results carry ``None`` numbers and a ``reason`` instead. ``StatsInputError`` is only for
inputs that cannot come from a correct caller: malformed sufficient statistics, a
confidence level outside (0, 1), an unknown method name, negative counts, and so on.
"""

from __future__ import annotations


class StatsInputError(ValueError):
    """An argument given to a statistics function is invalid (a caller bug or bad config)."""
