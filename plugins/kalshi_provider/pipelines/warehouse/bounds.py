"""What the warehouse's columns hold: its own bounds, checked by the warehouse before it writes.

The provider's reading checks Kalshi's formats (whole cents, fixed-point dollars of at most six
decimal places); whether a value fits a column is the warehouse's business, decided here.
"""

from __future__ import annotations

from decimal import Decimal

#: Dollars are NUMERIC(24, 6): six decimal places (as Kalshi's fixed-point strings carry), and
#: 18 digits before the point.
DOLLAR_SCALE = 6
DOLLAR_PRECISION = 24
DOLLAR_QUANTUM = Decimal(1).scaleb(-DOLLAR_SCALE)
#: Every stored dollar amount is smaller than this in magnitude.
MAX_DOLLARS = Decimal(10) ** (DOLLAR_PRECISION - DOLLAR_SCALE)
