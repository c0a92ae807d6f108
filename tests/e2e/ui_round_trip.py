"""Save Kalshi connections exactly as Airflow 3.3's UI form does, then read them with KalshiHook.

Run by test_ui_connection_round_trip.py in a subprocess with its own AIRFLOW_HOME (a migrated
SQLite metadata DB) and ``_AIRFLOW_PROCESS_CONTEXT=server``, which the API server sets and which
makes connections resolve from the metadata DB. Prints one JSON object with what it observed.

What the React form does, read from the UI bundle shipped in airflow/ui/dist (3.3.2):

- It renders the extra fields from ``GET /ui/connections/hook_meta`` (``extra_fields``, keyed by
  the plain conn-field names) with the same flexible form as DAG params. Each field starts at its
  ``value`` (the schema default, else null); an emptied text field becomes null, a number field
  ``Number(text)``.
- The params store turns the fields into the ``extra`` text with
  ``JSON.stringify(Object.fromEntries(entries.map(([key, {value}]) => [key, value])), undefined, 2)``:
  plain keys, no ``extra__kalshi__`` prefix.
- Saving posts ``POST /api/v2/connections`` with ``conn_type``, ``connection_id`` and every standard
  field except those left empty (``""`` becomes undefined), and ``extra`` (unless it is ``{}``).
- Editing fetches the connection (secrets come back as ``***``) and sends
  ``PATCH /api/v2/connections/{id}?update_mask=...`` with the form's values; the server merges
  ``***`` back to the stored values.
- The Test button posts the same body to ``POST /api/v2/connections/test``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def form_extra(extra_fields: dict, entered: dict) -> str:
    """The ``extra`` text the form writes: every field, its default unless the user typed."""
    values = {name: spec.get("value") for name, spec in extra_fields.items()}
    values.update(entered)
    return json.dumps(values, indent=2)


def form_body(conn_id: str, standard: dict, extra: str) -> dict:
    body = {"connection_id": conn_id, "conn_type": "kalshi"}
    body.update({key: value for key, value in standard.items() if value not in ("", None)})
    if extra != "{}":
        body["extra"] = extra
    return body


def main() -> None:
    from airflow.api_fastapi.app import create_app
    from cryptography.hazmat.primitives import serialization
    from fastapi.testclient import TestClient

    pem = Path(os.environ["ROUND_TRIP_KEY_FILE"]).read_text()
    key_id = os.environ["ROUND_TRIP_KEY_ID"]
    base_url = os.environ["ROUND_TRIP_BASE_URL"]
    out: dict = {}

    client = TestClient(create_app())
    response = client.get("/ui/connections/hook_meta")
    response.raise_for_status()
    [meta] = [m for m in response.json() if m["connection_type"] == "kalshi"]
    out["hook_meta"] = meta

    # 1. New connection, key pasted into the multi-line field, demo, timeout and retries typed.
    extra = form_extra(
        meta["extra_fields"], {"private_key": pem, "environment": "demo", "timeout": 7, "max_retries": 2}
    )
    body = form_body("kalshi_ui", {"login": key_id, "host": base_url, "description": ""}, extra)
    out["posted"] = {**body, "extra": json.loads(body["extra"])}
    out["posted"]["extra"]["private_key"] = "<pem>"
    created = client.post("/api/v2/connections", json=body)
    out["post_status"] = created.status_code
    out["post_response_extra"] = json.loads(created.json()["extra"])

    # The row Airflow stored.
    # The ORM model (the metadata DB's table), not the task SDK's Connection.
    from airflow.models.connection import Connection as ConnectionRow
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(select(ConnectionRow).where(ConnectionRow.conn_id == "kalshi_ui")).one()
        stored_extra = row.extra_dejson
        out["stored_extra_keys"] = sorted(stored_extra)
        out["stored_pem_intact"] = stored_extra["private_key"] == pem
        out["stored_password"] = row.password
        out["extra_encrypted"] = row.is_extra_encrypted
        wire_json = _execution_api_json(row)

    # 2. KalshiHook in the API server (how the Test button runs it) reads that connection.
    from kalshi_provider.hooks.kalshi import KalshiHook

    hook = KalshiHook("kalshi_ui")
    settings = hook.settings
    out["hook_settings"] = {
        "key_id": settings.key_id,
        "base_url": settings.base_url,
        "environment": settings.environment,
        "timeout": settings.timeout,
        "max_retries": settings.max_retries,
    }
    out["hook_value"] = hook.get_total_resting_order_value()

    def public(key) -> bytes:
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    expected_public = public(serialization.load_pem_private_key(pem.encode(), password=None))

    from kalshi_provider.connection import private_key_from_connection, validate_connection

    out["hook_key_matches"] = public(private_key_from_connection(hook.get_connection("kalshi_ui"))) == (
        expected_public
    )

    # 3. A worker gets the connection through the Execution API: the same row, serialised by the
    #    server's datamodel and rebuilt by the task SDK.
    from airflow.sdk.api.datamodels._generated import ConnectionResponse
    from airflow.sdk.execution_time.comms import ConnectionResult
    from airflow.sdk.execution_time.context import _process_connection_result_conn

    sdk_conn = _process_connection_result_conn(
        ConnectionResult.from_conn_response(ConnectionResponse.model_validate_json(wire_json))
    )
    worker_settings = validate_connection(sdk_conn)
    out["worker_settings"] = {"base_url": worker_settings.base_url, "timeout": worker_settings.timeout}
    out["worker_key_matches"] = public(private_key_from_connection(sdk_conn)) == expected_public

    # 4. The Test button, with the form's body.
    tested = client.post("/api/v2/connections/test", json=body)
    out["test_button"] = tested.json()

    # 5. Edit: the form loads the connection (secrets masked), the user changes the timeout only.
    fetched = client.get("/api/v2/connections/kalshi_ui").json()
    out["get_extra"] = json.loads(fetched["extra"])
    edited_extra = {**json.loads(fetched["extra"]), "timeout": 12}
    patch = form_body(
        "kalshi_ui", {"login": fetched["login"], "host": fetched["host"]}, json.dumps(edited_extra, indent=2)
    )
    patched = client.patch("/api/v2/connections/kalshi_ui", params={"update_mask": "extra"}, json=patch)
    out["patch_status"] = patched.status_code
    edited = KalshiHook("kalshi_ui")
    out["edited_timeout"] = edited.settings.timeout
    out["edited_key_matches"] = public(private_key_from_connection(edited.get_connection("kalshi_ui"))) == (
        expected_public
    )
    out["edited_value"] = edited.get_total_resting_order_value()

    # 6. The other way to give the key: "Private key path" (e.g. a mounted secret), PEM left empty.
    extra = form_extra(meta["extra_fields"], {"private_key_path": os.environ["ROUND_TRIP_KEY_FILE"]})
    body = form_body("kalshi_ui_path", {"login": key_id, "host": base_url}, extra)
    out["path_post_status"] = client.post("/api/v2/connections", json=body).status_code
    by_path = KalshiHook("kalshi_ui_path")
    out["path_settings"] = {"environment": by_path.settings.environment, "timeout": by_path.settings.timeout}
    out["path_value"] = by_path.get_total_resting_order_value()
    out["path_test_button"] = client.post("/api/v2/connections/test", json=body).json()

    print("ROUND_TRIP_RESULT " + json.dumps(out))


def _execution_api_json(row) -> str:
    """The body of the Execution API's ``GET /execution/connections/{id}`` for this row."""
    from airflow.api_fastapi.execution_api.datamodels.connection import ConnectionResponse

    return ConnectionResponse.model_validate(row).model_dump_json(by_alias=True)


if __name__ == "__main__":
    sys.exit(main())
