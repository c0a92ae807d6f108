"""A Kalshi connection saved the way Airflow 3.3's UI saves it is read correctly by KalshiHook.

The UI's form posts ``extra`` as a JSON string keyed by the plain conn-field names
(``private_key``, not ``extra__kalshi__private_key``); ui_round_trip.py documents where that comes
from and replays it against Airflow's real API app (FastAPI test client, SQLite metadata DB), then
reads the stored connection back with KalshiHook, signs requests to the local simulator with it,
and presses the Test button. It runs in a subprocess so Airflow's configuration and singletons
belong to that run alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kalshi_provider.connection import EXTRA_PRIVATE_KEY

SCRIPT = Path(__file__).with_name("ui_round_trip.py")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def round_trip(migrated_airflow_home, simulator, tmp_path_factory) -> dict:
    from kalshi_simulator import generate_private_key, private_pem

    key = generate_private_key("rsa")
    key_id = "ui-round-trip"
    simulator.add_account(key_id, key)
    try:
        tmp = tmp_path_factory.mktemp("ui-round-trip")
        key_file = tmp / "kalshi.pem"
        key_file.write_bytes(private_pem(key))
        key_file.chmod(0o600)
        home = migrated_airflow_home.copy(tmp / "airflow")
        env = dict(
            # What `airflow api-server` sets: connections resolve from the metadata DB.
            _AIRFLOW_PROCESS_CONTEXT="server",
            AIRFLOW__CORE__TEST_CONNECTION="Enabled",
            # Every request is an admin's; authentication is not what this test is about.
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            ROUND_TRIP_KEY_FILE=str(key_file),
            ROUND_TRIP_KEY_ID=key_id,
            ROUND_TRIP_BASE_URL=simulator.base_url,
        )
        done = home.python(str(SCRIPT), env=env, timeout=300, cwd=REPO)
    finally:
        simulator.remove_account(key_id)
    lines = [line for line in done.stdout.splitlines() if line.startswith("ROUND_TRIP_RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-4000:] + done.stderr[-4000:]
    return json.loads(lines[-1].removeprefix("ROUND_TRIP_RESULT "))


def test_the_form_writes_plain_conn_field_names(round_trip):
    assert set(round_trip["hook_meta"]["extra_fields"]) == {
        "private_key",
        "private_key_path",
        "private_key_passphrase",
        "environment",
        "timeout",
        "max_retries",
    }
    posted = round_trip["posted"]["extra"]
    assert set(posted) == set(round_trip["hook_meta"]["extra_fields"])
    assert not any(key.startswith("extra__") for key in posted)
    # Untouched fields arrive as their defaults or null.
    assert posted["private_key_path"] is None and posted["private_key_passphrase"] is None
    assert round_trip["post_status"] == 201
    assert round_trip["stored_extra_keys"] == sorted(posted)
    assert round_trip["stored_pem_intact"]
    assert round_trip["stored_password"] is None
    assert round_trip["extra_encrypted"]  # the metadata DB holds extras Fernet-encrypted


def test_the_api_masks_the_key_in_answers(round_trip):
    assert round_trip["post_response_extra"][EXTRA_PRIVATE_KEY] == "***"
    assert round_trip["get_extra"][EXTRA_PRIVATE_KEY] == "***"
    assert round_trip["get_extra"]["environment"] == "demo"


def test_kalshi_hook_reads_the_saved_connection(round_trip, simulator):
    assert round_trip["hook_settings"] == {
        "key_id": "ui-round-trip",
        "base_url": simulator.base_url,
        "environment": "demo",
        "timeout": 7.0,
        "max_retries": 2,
    }
    assert round_trip["hook_key_matches"]
    assert round_trip["hook_value"] == 123456  # signed with that key, accepted by the simulator


def test_a_worker_reads_the_same_connection_through_the_execution_api(round_trip, simulator):
    assert round_trip["worker_settings"] == {"base_url": simulator.base_url, "timeout": 7.0}
    assert round_trip["worker_key_matches"]


def test_the_test_button_succeeds(round_trip, simulator):
    assert round_trip["test_button"]["status"] is True, round_trip["test_button"]
    # A custom Base URL (the simulator's) is named as such, not as the unused environment's.
    assert round_trip["test_button"]["message"].startswith(f"Connected to {simulator.base_url}: key ")


def test_editing_keeps_the_masked_key(round_trip):
    assert round_trip["patch_status"] == 200
    assert round_trip["edited_timeout"] == 12.0
    assert round_trip["edited_key_matches"]
    assert round_trip["edited_value"] == 123456


def test_key_by_path_instead_of_pasted(round_trip):
    assert round_trip["path_post_status"] == 201
    assert round_trip["path_settings"] == {"environment": "production", "timeout": 10.0}
    assert round_trip["path_value"] == 123456
    assert round_trip["path_test_button"]["status"] is True, round_trip["path_test_button"]
