"""Airflow's hook-level lineage, reported without ever costing the work it describes.

Hooks tell Airflow's hook lineage collector which assets they read and wrote; a lineage reader
such as the OpenLineage provider's turns them into the task's input and output datasets. Without
a reader the collector does nothing. ``apache-airflow-providers-common-compat`` gives the same
collector on every Airflow 3 line (it adds what 3.0 and 3.1 lack).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


def report_lineage(context: Any, *, inputs: Iterable[str] = (), outputs: Iterable[str] = ()) -> None:
    """Report asset URIs read (``inputs``) and written (``outputs``) by ``context`` (the hook).

    Lineage is a by-product: a failure here is logged and never fails the caller.
    """
    try:
        from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector

        collector = get_hook_lineage_collector()
        for uri in inputs:
            collector.add_input_asset(context=context, uri=uri)
        for uri in outputs:
            collector.add_output_asset(context=context, uri=uri)
    except Exception as err:  # noqa: BLE001 - lineage must never cost a reading or a row
        log.warning(
            "Could not report lineage to Airflow (%s); the work itself is unaffected", type(err).__name__
        )
