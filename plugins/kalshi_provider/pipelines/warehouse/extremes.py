"""MIN and MAX of a column's values per group, exactly, on every engine the chart reads.

PostgreSQL's and MySQL/MariaDB's NUMERIC compare exactly. SQLite holds the dollars as fixed-point
text, so its own MIN and MAX would compare text or floats: here they compare the text with its
length first, and a check against the floats' order refuses text another tool wrote that breaks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, String, case, cast, func, literal, literal_column, or_, type_coerce

from kalshi_provider.pipelines.warehouse.schema import ExactDecimal


@dataclass(frozen=True)
class Extremes:
    """MIN and MAX of a value per bucket, exactly, and a check of the order they were found in.

    ``checks`` are more aggregates of the grouped query; ``misordered(grouped)`` is true, in the
    outer query, for a bucket whose extremes disagree with that check.
    """

    low: Any
    high: Any
    checks: tuple[Any, ...] = ()

    def misordered(self, grouped: Any) -> Any:
        if not self.checks:
            return literal_column("0")
        as_real = [cast(grouped.c[name], Float) for name in ("low", "high")]
        return or_(as_real[0] != grouped.c.low_real, as_real[1] != grouped.c.high_real)


def extremes(value: Any, dialect_name: str) -> Extremes:
    """MIN and MAX of ``value``, exact on every dialect.

    SQLite holds the dollars as fixed-point text (``-12.500000``) and has no exact decimal type, so
    its MIN and MAX would compare text ('9' > '10') or, cast, floats (equal beyond 15 digits). Text
    of one scale without leading zeros, as ``ExactDecimal`` writes it, compares exactly once its
    length goes first: ``char(64 + length)`` before the digits, of the magnitude; the negative
    amounts are compared among themselves (the largest magnitude is the minimum), the others among
    themselves. Text another tool wrote may break that order, so each bucket's extremes are checked
    against the floats' (equal as floats where the order held; a bucket that fails is refused).
    """
    if dialect_name != "sqlite" or not isinstance(value.type, ExactDecimal):
        return Extremes(func.min(value), func.max(value))
    value = type_coerce(value, String())  # the stored text itself, compared and bound as text
    negative = value < "0"  # '-' sorts before every digit
    magnitude = case((negative, func.substr(value, 2)), else_=value)
    key = func.char(64 + func.length(magnitude)).concat(magnitude)
    below_zero, from_zero = case((negative, key)), case((~negative, key))

    def amount(found: Any, sign: str) -> Any:
        return literal(sign).concat(func.substr(found, 2))

    low = func.coalesce(amount(func.max(below_zero), "-"), amount(func.min(from_zero), ""))
    high = func.coalesce(amount(func.max(from_zero), ""), amount(func.min(below_zero), "-"))
    as_real = cast(value, Float)
    checks = (func.min(as_real).label("low_real"), func.max(as_real).label("high_real"))
    return Extremes(type_coerce(low, ExactDecimal), type_coerce(high, ExactDecimal), checks)
