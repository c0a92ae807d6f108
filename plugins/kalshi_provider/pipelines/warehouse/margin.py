"""The free margin per exchange shard (balance minus resting order value): a figure this provider
derives in exact decimals, never from floats and never guessed (the rules: ``docs/tables.md``).

A shard one breakdown omits counts as 0 there only if that breakdown is complete (kept, adding up
exactly); else, or without the hour's resting order value, that side is unknown (None), as is a
difference the columns cannot hold exactly; an hour without a balance has no free margin. Pure
functions, given the load's reading or the rows an hour keeps from an earlier observation.
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
class ShardMargin:
    """One shard's free margin and what it is made of; None where unknown."""

    exchange_index: int
    shard_balance_dollars: Decimal | None
    shard_resting_order_value_dollars: Decimal | None
    shard_free_margin_dollars: Decimal | None


def free_margin(balance: Breakdown | None, resting: Breakdown | None) -> list[ShardMargin]:
    """The hour's free margin per shard, ordered by shard (see the module doc for the rules).

    :param balance: The hour's balance and its split; None when the hour has no balance.
    :param resting: The hour's total resting order value and its split; None when it has none.
    """
    if balance is None:
        return []
    indexes = sorted(set(balance.shards) | set(resting.shards if resting is not None else ()))
    margins = []
    for index in indexes:
        shard_balance = _side(balance, index)
        shard_resting = None if resting is None else _side(resting, index)
        free = None
        if shard_balance is not None and shard_resting is not None:
            free = shard_balance - shard_resting
            if abs(free) >= MAX_DOLLARS:
                free = None  # beyond what the column holds exactly: unknown, never rounded
        margins.append(ShardMargin(index, shard_balance, shard_resting, free))
    return margins


def _side(breakdown: Breakdown, index: int) -> Decimal | None:
    """A shard's amount in ``breakdown``: listed, or 0 when the breakdown is complete, else unknown."""
    if index in breakdown.shards:
        return breakdown.shards[index]
    return _ZERO if breakdown.complete else None
