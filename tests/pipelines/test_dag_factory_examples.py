"""The DAG factories' docstring examples, each written as a DAG file into a fresh folder and loaded
by Airflow's DagBag under its default settings (safe mode on), as the DAG processor would."""

from __future__ import annotations

from pathlib import Path

from airflow.dag_processing.dagbag import DagBag

from kalshi_provider.pipelines.hourly import hourly_dag
from kalshi_provider.pipelines.quality import quality_dag
from tests.fixtures.docstring_examples import the_example


def load_dag_file(folder: Path, text: str) -> DagBag:
    folder.mkdir()
    (folder / "example_dag.py").write_text(text)
    return DagBag(dag_folder=str(folder))


def test_the_hourly_dag_example_builds_the_dag_it_describes(tmp_path):
    bag = load_dag_file(tmp_path / "dags", the_example(hourly_dag))
    assert bag.import_errors == {}
    assert bag.dag_ids == ["kalshi_fcm_desks"]
    dag = bag.dags["kalshi_fcm_desks"]
    assert dag.params["kalshi_conn_ids"] == ["kalshi_desk_a", "kalshi_desk_b"]
    assert (dag.params["warehouse_conn_id"], dag.params["schema"]) == ("kalshi_warehouse", "risk")
    assert dag.params["max_lateness_minutes"] == 20
    assert dag.timetable.expression == "0 * * * *"


def test_the_quality_dag_example_builds_the_dag_with_its_notifier(tmp_path):
    bag = load_dag_file(tmp_path / "dags", the_example(quality_dag))
    assert bag.import_errors == {}
    assert bag.dag_ids == ["kalshi_resting_order_value_quality"]
    dag = bag.dags["kalshi_resting_order_value_quality"]
    assert dag.params["kalshi_conn_ids"] == ["kalshi_desk_a", "kalshi_desk_b"]
    [notifier] = dag.get_task("check_freshness_and_quality").on_failure_callback
    assert type(notifier).__name__ == "SmtpNotifier"
    assert (notifier.smtp_conn_id, notifier.to) == ("smtp_alerts", "risk-desk@example.com")


def test_control_an_example_without_the_word_airflow_is_skipped_silently(tmp_path):
    """Why the examples keep their first comment: without it safe mode loads nothing, reporting nothing."""
    text = "\n".join(line for line in the_example(hourly_dag).splitlines() if "Airflow" not in line)
    bag = load_dag_file(tmp_path / "dags", text)
    assert (bag.dag_ids, bag.import_errors) == ([], {})
