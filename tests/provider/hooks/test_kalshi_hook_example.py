"""KalshiHook's docstring example, taken from the docstring and run against the simulator over HTTP."""

from __future__ import annotations

from kalshi_provider.hooks.kalshi import KalshiHook
from tests.fixtures.docstring_examples import the_example


def test_the_docstring_example_reads_the_account_over_signed_http(
    kalshi_connection, simulator, kalshi_account, capsys
):
    kalshi_connection("kalshi_default")  # the id the example names
    simulator.set_balance(kalshi_account.key_id, 4321, balance_dollars="43.210000", portfolio_value=0)
    namespace: dict[str, object] = {}
    exec(compile(the_example(KalshiHook), "KalshiHook example", "exec"), namespace)
    assert namespace["value"].total_cents == 123456
    assert str(namespace["balance"].balance_dollars) == "43.210000"
    assert namespace["status"]["exchange_active"] is True
    assert capsys.readouterr().out.startswith("123456 43.210000 ")  # then the answer's arrival
    assert [(r.path, r.status, r.signature_valid) for r in simulator.requests] == [
        ("/trade-api/v2/portfolio/summary/total_resting_order_value", 200, True),
        ("/trade-api/v2/portfolio/balance", 200, True),
        ("/trade-api/v2/exchange/status", 200, True),
    ]
