"""Airflow DAG: freshness and plausibility checks of the hourly Kalshi table.

The DAG is built by the installed provider; a team's own DAG folder holds the same lines.
"""

from kalshi_provider.pipelines.quality import quality_dag

dag = quality_dag()
