"""Airflow DAG: freshness and plausibility checks of the hourly Kalshi tables."""

from kalshi_provider.pipelines.quality import quality_dag

dag = quality_dag()  # add on_failure_callback=[...] notifiers: see "Freshness and quality checks"
