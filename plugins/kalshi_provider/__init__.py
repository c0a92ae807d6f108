"""Apache Airflow provider for Kalshi's Trade API v2.

The provider (``hooks``, ``operators``, and the modules they use: ``connection``, ``signing``,
``responses``, ``readings``, ``exceptions``) stands on its own; ``kalshi_provider.pipelines`` is the
application built on it (DAG factories, warehouse, quality rules, the chart) and is imported by
nothing in the provider.
"""

from __future__ import annotations

__version__ = "0.2.0"
