"""The Airflow lines the provider supports: the latest patch of each, resolved as of a date.

Airflow's constraint files are not reachable from CI, and an old Airflow resolved with today's
libraries can break Airflow itself (3.2.2 with a newer fastapi). Resolving with
``--exclude-newer`` a few weeks after each release gives what a team installed back then.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AirflowLine:
    version: str
    #: apache-airflow-task-sdk released with it: pinned too, so no resolver can move it.
    task_sdk: str
    #: Packages resolved as uploaded up to this date (about three weeks after the release).
    resolved_as_of: str
    #: What the line needs beyond Airflow and its SQLite provider for a check to mean anything.
    extras: tuple[str, ...] = ()

    @property
    def pins(self) -> list[str]:
        return [
            f"apache-airflow=={self.version}",
            f"apache-airflow-core=={self.version}",
            f"apache-airflow-task-sdk=={self.task_sdk}",
        ]


LINES = (
    # 3.0's connection form needs the real WTForms, which a deployment gets with the FAB provider
    # (3.1 and later stand in for it themselves).
    AirflowLine("3.0.6", "1.0.6", "2025-09-19", extras=("wtforms",)),
    AirflowLine("3.1.8", "1.1.8", "2026-04-01"),
    AirflowLine("3.2.2", "1.2.2", "2026-06-19"),
    AirflowLine("3.3.2", "1.3.2", "2026-10-08"),
)
