"""Worker: load one DAG file through ``DagBag`` in this fresh interpreter; print one JSON line.

``dagbag_s`` is the time of ``DagBag(dag_folder=FILE)`` alone, after ``DagBag`` itself is
imported: what a DAG processor, which has Airflow loaded already, pays for the file.
"""

from __future__ import annotations

import json
import sys
import time

t_start = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag  # noqa: E402

t_imported = time.perf_counter()


def main(path: str) -> None:
    before = set(sys.modules)
    t0 = time.perf_counter()
    bag = DagBag(dag_folder=path)
    dagbag_s = time.perf_counter() - t0
    added = sorted(set(sys.modules) - before)
    if bag.import_errors or not bag.dags:
        raise SystemExit(f"{path} did not load: {bag.import_errors}")
    print(
        json.dumps(
            {
                "dagbag_s": dagbag_s,
                "import_dagbag_s": t_imported - t_start,
                "dags": sorted(bag.dags),
                "tasks": sum(len(dag.tasks) for dag in bag.dags.values()),
                "new_modules": len(added),
                "new_module_names": [m for m in added if not m.startswith("unusual_prefix_")],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
