"""docker-compose.yaml: valid Compose, the intended topology, and the Kalshi key only as a secret.

No Docker engine runs here: the file is checked against the Compose Specification's JSON schema
(vendored in check-jsonschema, so offline), and Debian's ``docker-compose`` (1.29) resolves it as
``docker compose up`` would, with .env.example as the .env file: ``config`` interpolates, merges
the anchors, validates the result against its own copy of the specification and prints it, all
without an engine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kalshi_provider.connection import validate_connection
from kalshi_provider.get_provider_info import KEY_SECRET_PATH
from kalshi_provider.hooks.kalshi import KalshiHook
from tests.fixtures.checkout import REPO

pytestmark = pytest.mark.process  # docker-compose and check-jsonschema, as commands

COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
CHECK_JSONSCHEMA = str(Path(sys.executable).with_name("check-jsonschema"))
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
}
LONG_RUNNING = {"postgres", "redis", "warehouse"} | (AIRFLOW_SERVICES - {"airflow-init"})
#: What a user would put into the required, empty-by-default values of .env.example.
FILLED_IN = {
    "AIRFLOW_ADMIN_PASSWORD": "s3cret-admin",
    "KALSHI_API_KEY_ID": "a952bcbe-ec3b-4b5b-b8f9-11dae589608c",
    "WAREHOUSE_PASSWORD": "0123456789abcdef",
}


def docker_compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    """``docker-compose config`` on docker-compose.yaml with .env.example as the .env file.

    ``env`` is the whole shell environment Compose sees (nothing of the test run's leaks in); as in
    ``docker compose up``, a shell variable takes precedence over the same name in the .env file.
    """
    docker_compose = shutil.which("docker-compose")
    if docker_compose is None:
        pytest.fail("docker-compose not found: apt-get install docker-compose (scripts/test.sh does)")
    return subprocess.run(
        [docker_compose, "--env-file", str(ENV_EXAMPLE), "--file", str(COMPOSE_FILE), "config"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def resolved(**overrides: str) -> dict:
    """The file as Compose hands it to the containers, with .env.example filled in as a user would."""
    done = docker_compose_config({**FILLED_IN, **overrides})
    assert done.returncode == 0, done.stderr
    assert "is not set" not in done.stderr  # a variable used but in neither .env.example nor FILLED_IN
    return yaml.safe_load(done.stdout)


def variables() -> set[str]:
    """The names of the variables docker-compose.yaml interpolates (``$$`` is a literal ``$``)."""
    text = COMPOSE_FILE.read_text().replace("$$", "")
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))


@pytest.fixture(scope="module")
def compose() -> dict:
    return resolved()


def connection(compose: dict, service: str, conn_id: str):
    """The connection ``AIRFLOW_CONN_<ID>`` of ``service``, parsed as Airflow parses it."""
    from airflow.sdk import Connection

    value = compose["services"][service]["environment"][f"AIRFLOW_CONN_{conn_id.upper()}"]
    return Connection.from_json(value, conn_id=conn_id)


# --- Validity -----------------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_spec_offline():
    done = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_catches_mistakes(tmp_path):
    """The same check rejects a broken copy, so a pass above means the schema was applied."""
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["airflow-worker"]["healthcheck"]["interval"] = 30  # must be a duration string
    broken["services"]["airflow-worker"]["restart_policy"] = "always"  # no such key
    path = tmp_path / "docker-compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    done = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "restart_policy" in done.stdout + done.stderr


@pytest.mark.parametrize("name", [*FILLED_IN, "KALSHI_PRIVATE_KEY_FILE"])
def test_compose_refuses_to_start_while_a_required_value_is_empty(name):
    """The three secrets as .env.example ships them (empty), and the key path when a user clears it."""
    env = {key: value for key, value in FILLED_IN.items() if key != name}
    if name not in FILLED_IN:
        env[name] = ""
    done = docker_compose_config(env)
    assert done.returncode != 0, f"docker-compose config accepted an empty {name}"
    # Compose's message ends with the file's own: "...: set NAME in .env".
    assert done.stderr.strip().rsplit(": ", 1)[-1].startswith(f"set {name} in .env"), done.stderr


def test_env_example_lists_every_variable_the_file_uses():
    listed = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert variables() - listed == set(), "variables used by docker-compose.yaml but not in .env.example"
    assert listed - variables() == set(), "variables in .env.example that docker-compose.yaml ignores"


def test_the_file_header_documents_every_variable():
    header = COMPOSE_FILE.read_text().split("\n---\n", 1)[0]
    undocumented = [name for name in variables() if f"\n# {name} " not in header]
    assert undocumented == []


# --- Topology -----------------------------------------------------------------------------------


def test_services(compose):
    assert set(compose["services"]) >= AIRFLOW_SERVICES | {"postgres", "redis", "warehouse"}
    assert compose["services"]["postgres"]["image"].startswith("postgres:")
    assert compose["services"]["warehouse"]["image"].startswith("postgres:")
    assert compose["services"]["redis"]["image"].startswith("redis:")


def test_airflow_services_run_the_image_built_from_the_dockerfile(compose):
    images = set()
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        assert service["build"] == {"context": str(REPO)}, name
        images.add(service["image"])
    assert len(images) == 1


def test_celery_executor_everywhere_with_redis_and_postgres(compose):
    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://:@redis:6379/"), name
        assert "@postgres/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW_CONFIG"] == "/opt/airflow/config/airflow.cfg", name


def test_worker_is_a_celery_worker_that_scales(compose):
    worker = compose["services"]["airflow-worker"]
    assert worker["command"] == "celery worker"
    # `docker compose up --scale airflow-worker=3` needs no fixed name and no published port.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["depends_on"]["warehouse"]["condition"] == "service_healthy"
    assert worker["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_api_server_on_8080_with_connection_testing_enabled(compose):
    api = compose["services"]["airflow-apiserver"]
    assert api["command"] == "api-server"
    assert api["ports"] == [{"published": 8080, "target": 8080}]
    assert api["environment"]["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
    assert "/api/v2/monitor/health" in " ".join(api["healthcheck"]["test"])


def test_commands_of_the_other_components(compose):
    services = compose["services"]
    assert services["airflow-scheduler"]["command"] == "scheduler"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    assert services["airflow-triggerer"]["command"] == "triggerer"


def test_every_long_running_service_has_a_healthcheck_and_waits_for_init(compose):
    for name in LONG_RUNNING:
        service = compose["services"][name]
        assert service["healthcheck"]["test"], name
        assert service.get("restart") == "always", name
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        depends_on = compose["services"][name]["depends_on"]
        assert depends_on["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends_on["postgres"]["condition"] == "service_healthy", name
        assert depends_on["redis"]["condition"] == "service_healthy", name


def test_dags_and_plugin_come_from_the_image_not_from_bind_mounts(compose):
    """The same image then runs under Airflow's Helm chart, which mounts no checkout."""
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            target = volume.split(":")[1] if isinstance(volume, str) else volume["target"]
            assert not target.startswith(("/opt/airflow/dags", "/opt/airflow/plugins")), (name, volume)
    for name in AIRFLOW_SERVICES:
        mounted = {volume.split(":")[1] for volume in compose["services"][name]["volumes"]}
        assert mounted == {"/opt/airflow/logs", "/opt/airflow/config"}, name


def test_fab_auth_manager_everywhere(compose):
    """Airflow's production auth manager; the simple one is for development and tests only."""
    for name in AIRFLOW_SERVICES | {"airflow-cli"}:
        env = compose["services"][name]["environment"]
        assert env["AIRFLOW__CORE__AUTH_MANAGER"] == (
            "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
        ), name
        assert not [key for key in env if "SIMPLE_AUTH_MANAGER" in key], name


def test_init_job_migrates_and_creates_the_admin(compose):
    """The image's entrypoint migrates and creates the FAB Admin user from these variables."""
    init = compose["services"]["airflow-init"]
    env = init["environment"]
    assert env["_AIRFLOW_DB_MIGRATE"] == "true"
    assert env["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert env["_AIRFLOW_WWW_USER_USERNAME"] == "admin"
    assert env["_AIRFLOW_WWW_USER_PASSWORD"] == FILLED_IN["AIRFLOW_ADMIN_PASSWORD"]
    script = init["command"][-1]
    assert "airflow config list" in script and "/entrypoint" in script
    # The admin password reaches only airflow-init, never the long-running services.
    for name in LONG_RUNNING | {"airflow-cli"}:
        values = compose["services"][name].get("environment", {}).values()
        assert FILLED_IN["AIRFLOW_ADMIN_PASSWORD"] not in values, name


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_init_script_is_valid_bash(compose, tmp_path):
    script = tmp_path / "init.sh"
    # `config` prints a literal $ as $$ (its output is Compose again); the container gets one $.
    script.write_text(compose["services"]["airflow-init"]["command"][-1].replace("$$", "$"))
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --- Connections --------------------------------------------------------------------------------


def test_warehouse_connection_points_at_the_warehouse_service(compose):
    warehouse = compose["services"]["warehouse"]
    db = warehouse["environment"]
    for name in AIRFLOW_SERVICES:
        conn = connection(compose, name, "kalshi_warehouse")
        assert conn.conn_type == "postgres"
        assert conn.host == "warehouse" and conn.host in compose["services"]
        assert conn.port == 5432
        assert conn.login == db["POSTGRES_USER"]
        assert conn.password == db["POSTGRES_PASSWORD"] == FILLED_IN["WAREHOUSE_PASSWORD"]
        assert conn.schema == db["POSTGRES_DB"]
    # Not Airflow's own metadata database.
    assert compose["services"]["postgres"]["environment"]["POSTGRES_DB"] != db["POSTGRES_DB"]


def test_kalshi_connection_names_the_secret_file(compose):
    for name in AIRFLOW_SERVICES:
        conn = connection(compose, name, "kalshi_default")
        assert conn.conn_type == "kalshi"
        assert conn.login == FILLED_IN["KALSHI_API_KEY_ID"]
        assert conn.password is None
        extra = conn.extra_dejson
        assert extra["private_key_path"] == KEY_SECRET_PATH == "/run/secrets/kalshi_private_key"
        assert "private_key" not in extra
        settings = validate_connection(conn)
        assert settings.environment == "production"
        assert settings.base_url == "https://external-api.kalshi.com/trade-api/v2"


def test_kalshi_environment_and_base_url_come_from_env():
    compose = resolved(KALSHI_ENVIRONMENT="demo")
    assert validate_connection(connection(compose, "airflow-worker", "kalshi_default")).base_url == (
        "https://external-api.demo.kalshi.co/trade-api/v2"
    )
    other = "https://api.elections.kalshi.com/trade-api/v2"  # the older shared host, still supported
    compose = resolved(KALSHI_BASE_URL=other)
    assert validate_connection(connection(compose, "airflow-worker", "kalshi_default")).base_url == other


def test_the_key_is_a_compose_secret_never_an_environment_value(tmp_path, kalshi_account):
    key_file = tmp_path / "kalshi.pem"
    key_file.write_bytes(kalshi_account.private_pem)
    compose = resolved(KALSHI_PRIVATE_KEY_FILE=str(key_file))
    assert compose["secrets"]["kalshi_private_key"] == {"file": str(key_file)}
    # The services that call Kalshi (tasks; the UI's Test button) get the secret, mounted by
    # Compose at /run/secrets/<name>; the others do not need it.
    for name in ("airflow-worker", "airflow-apiserver", "airflow-init"):
        assert compose["services"][name]["secrets"] == [{"source": "kalshi_private_key"}], name
    for name in ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert "secrets" not in compose["services"][name], name
    pem = kalshi_account.private_pem.decode()
    body = "".join(pem.strip().splitlines()[1:-1])
    for name, service in compose["services"].items():
        for variable, value in service.get("environment", {}).items():
            assert "PRIVATE KEY" not in value, (name, variable)
            assert body[:40] not in value.replace("\\n", "").replace("\n", ""), (name, variable)
            assert str(key_file) not in value, (name, variable)
        for volume in service.get("volumes", []):
            assert str(key_file) not in str(volume), name


def test_the_compose_kalshi_connection_works(tmp_path, monkeypatch, kalshi_account):
    """kalshi_default exactly as Compose hands it to a worker, against the local simulator.

    Only the key path differs: the test cannot write /run/secrets, so it points the connection at
    a file with the same role.
    """
    compose = resolved(KALSHI_API_KEY_ID=kalshi_account.key_id, KALSHI_BASE_URL=kalshi_account.base_url)
    value = compose["services"]["airflow-worker"]["environment"]["AIRFLOW_CONN_KALSHI_DEFAULT"]
    key_file = tmp_path / "kalshi_private_key"
    key_file.write_bytes(kalshi_account.private_pem)
    key_file.chmod(0o600)
    assert KEY_SECRET_PATH in value
    monkeypatch.setenv("AIRFLOW_CONN_KALSHI_DEFAULT", value.replace(KEY_SECRET_PATH, str(key_file)))
    ok, message = KalshiHook().test_connection()
    assert ok, message
    assert KalshiHook().get_total_resting_order_value() == 123456
