"""Entry point for ``python -m kalshi_provider.simulator`` (see cli.py)."""

from kalshi_provider.simulator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
