"""Entry point for ``python -m kalshi_simulator`` (see cli.py)."""

from kalshi_simulator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
