"""Airflow DAG: freshness and plausibility checks of the hourly Kalshi table.

The DAG is built by the installed provider; a team's own DAG folder holds the same lines, plus the
notifiers that should hear about a failed check (README: "Freshness and quality checks").
"""

from kalshi_provider.pipelines.quality import quality_dag

dag = quality_dag()
