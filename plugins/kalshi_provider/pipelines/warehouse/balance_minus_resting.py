"""Per exchange shard: its balance minus the value of its resting orders, in exact decimals.

A figure this provider derives; Kalshi publishes none under any name, and its balance is the
"Member's available balance", which may already leave out what resting orders hold: then this
difference counts them twice. Kalshi defines no "free margin" (``docs/tables.md`` quotes Kalshi's
words with their URLs). A shard one breakdown omits counts as 0 there only if that breakdown is
complete; else, or without the hour's resting order value, that side is unknown (None), as is a
difference the columns cannot hold exactly. Pure functions of the load's reading or the hour's rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from kalshi_provider.pipelines.warehouse.bounds import MAX_DOLLARS

_ZERO = Decimal(0)


@dataclass(frozen=True)
class Breakdown:
    """An hour's amount in dollars and its split per exchange shard, as the hour holds them.

    :param amount: What the shards should add up to (the balance, or the total resting order value).
    :param shards: Dollars per ``exchange_index``.
    :param left_out: The split Kalshi sent was left out of the hour (its problem is recorded).
    """

    amount: Decimal
    shards: Mapping[int, Decimal] = field(default_factory=dict)
    left_out: bool = False

    @property
    def complete(self) -> bool:
        """Whether the split covers every shard: kept, and adding up exactly to the amount."""
        return not self.left_out and sum(self.shards.values(), _ZERO) == self.amount


@dataclass(frozen=True)
class ShardBalanceMinusResting:
    """One shard's balance, resting order value and their difference; None where unknown."""

    exchange_index: int
    shard_balance_dollars: Decimal | None
    shard_resting_order_value_dollars: Decimal | None
    shard_balance_minus_resting_dollars: Decimal | None


def balance_minus_resting(
    balance: Breakdown | None, resting: Breakdown | None
) -> list[ShardBalanceMinusResting]:
    """The hour's balance minus resting order value per shard, by shard (rules: the module doc).

    :param balance: The hour's balance and its split; None when the hour has no balance.
    :param resting: The hour's total resting order value and its split; None when it has none.
    """
    if balance is None:
        return []
    indexes = sorted(set(balance.shards) | set(resting.shards if resting is not None else ()))
    shards = []
    for index in indexes:
        shard_balance = _side(balance, index)
        shard_resting = None if resting is None else _side(resting, index)
        difference = None
        if shard_balance is not None and shard_resting is not None:
            difference = shard_balance - shard_resting
            if abs(difference) >= MAX_DOLLARS:
                difference = None  # beyond what the column holds exactly: unknown, never rounded
        shards.append(ShardBalanceMinusResting(index, shard_balance, shard_resting, difference))
    return shards


def _side(breakdown: Breakdown, index: int) -> Decimal | None:
    """A shard's amount in ``breakdown``: listed, or 0 when the breakdown is complete, else unknown."""
    if index in breakdown.shards:
        return breakdown.shards[index]
    return _ZERO if breakdown.complete else None
