"""The provider as Airflow 3.3.2 sees it: listed, registered, its connection form declared.

Everything here goes through Airflow's own code (the CLI, ``ProvidersManager``, the schemas that
ship in the airflow package, and the service behind the UI's ``/ui/connections/hook_meta``).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import warnings
from importlib import metadata
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

import kalshi_provider
from kalshi_provider import connection as kalshi_connection
from kalshi_provider import get_provider_info as provider_info_module
from kalshi_provider.get_provider_info import get_provider_info
from kalshi_provider.hooks.kalshi import KalshiHook
from tests.fixtures.docs import REPO, section

DIST = "airflow-provider-kalshi"
HOOK_CLASS = "kalshi_provider.hooks.kalshi.KalshiHook"
FIELDS = {
    "private_key": kalshi_connection.EXTRA_PRIVATE_KEY,
    "private_key_path": kalshi_connection.EXTRA_PRIVATE_KEY_PATH,
    "private_key_passphrase": kalshi_connection.EXTRA_PASSPHRASE,
    "environment": kalshi_connection.EXTRA_ENVIRONMENT,
    "timeout": kalshi_connection.EXTRA_TIMEOUT,
    "max_retries": kalshi_connection.EXTRA_MAX_RETRIES,
}
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _schema(name: str) -> dict:
    return json.loads(files("airflow").joinpath(name).read_text())


def _kalshi_connection_type() -> dict:
    [conn_type] = get_provider_info()["connection-types"]
    return conn_type


@pytest.fixture
def providers_manager(monkeypatch):
    """A ProvidersManager discovering from scratch (the singleton restored afterwards).

    The same way Airflow's HookMetaService gets an unpolluted one.
    """
    from airflow.providers_manager import ProvidersManager

    monkeypatch.setattr(ProvidersManager, "_instance", None)
    monkeypatch.setattr(ProvidersManager, "_initialized", False)
    monkeypatch.setattr(ProvidersManager, "_initialization_stack_trace", None)
    return ProvidersManager


@pytest.fixture
def runtime_providers_manager(monkeypatch):
    """The task SDK's ProvidersManagerTaskRuntime (hook classes for ``get_hook``), from scratch."""
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    monkeypatch.setattr(ProvidersManagerTaskRuntime, "_instance", None)
    monkeypatch.setattr(ProvidersManagerTaskRuntime, "_initialized", False)
    return ProvidersManagerTaskRuntime


# --- The distribution ---------------------------------------------------------------------------


def _airflow_cli(tmp_path: Path, *args: str) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow-home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    done = subprocess.run(
        [AIRFLOW, *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.process
def test_airflow_providers_list_shows_the_distribution(tmp_path):
    providers = _airflow_cli(tmp_path, "providers", "list")
    [ours] = [row for row in providers if row["package_name"] == DIST]
    assert ours["version"] == metadata.version(DIST) == kalshi_provider.__version__
    hooks = _airflow_cli(tmp_path, "providers", "hooks")
    [hook] = [row for row in hooks if row["connection_type"] == "kalshi"]
    assert hook["class"] == HOOK_CLASS
    assert hook["package_name"] == DIST
    assert hook["conn_id_attribute_name"] == "kalshi_conn_id"


def test_entry_point_of_the_installed_distribution():
    [entry_point] = [
        ep for ep in metadata.entry_points(group="apache_airflow_provider") if ep.dist.name == DIST
    ]
    assert entry_point.value == "kalshi_provider.get_provider_info:get_provider_info"
    info = entry_point.load()()
    assert info["package-name"] == DIST  # Airflow ignores a provider whose name differs
    assert info["versions"][0] == metadata.version(DIST)


# --- The declared metadata ----------------------------------------------------------------------


def test_provider_info_is_valid_against_airflows_runtime_schema():
    """provider_info.schema.json: what ProvidersManager checks every provider against."""
    jsonschema.validate(get_provider_info(), _schema("provider_info.schema.json"))


def test_provider_info_is_valid_against_the_provider_yaml_schema():
    """provider.yaml.schema.json is stricter (conn-fields and ui-field-behaviour are spelled out).

    It is written for the providers in Airflow's own repository, so the two keys only their
    release tooling uses (``state``, ``source-date-epoch``) are not required here.
    """
    schema = _schema("provider.yaml.schema.json")
    schema["required"] = [key for key in schema["required"] if key not in ("state", "source-date-epoch")]
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(get_provider_info())]
    assert errors == []


def _resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_every_declared_component_resolves():
    """What the metadata claims exists: each module imports, each class is the right kind."""
    from airflow.sdk import BaseHook, BaseOperator

    info = get_provider_info()
    integrations = {entry["integration-name"] for entry in info["integrations"]}
    kinds = {"hooks": BaseHook, "operators": BaseOperator}
    for key, base in kinds.items():
        assert info[key], key
        for entry in info[key]:
            assert entry["integration-name"] in integrations, entry
            for module_name in entry["python-modules"]:
                module = importlib.import_module(module_name)
                found = [
                    obj
                    for obj in vars(module).values()
                    if isinstance(obj, type) and issubclass(obj, base) and obj.__module__ == module_name
                ]
                assert found, f"{module_name} declares no {base.__name__}"
    for conn_type in info["connection-types"]:
        hook = _resolve(conn_type["hook-class-name"])
        assert issubclass(hook, BaseHook) and hook.conn_type == conn_type["connection-type"]
    # Nothing of ours is undeclared: every hook and operator module of the package is listed.
    package = Path(kalshi_provider.__file__).parent
    for key in kinds:
        modules = [path.stem for path in (package / key).glob("*.py") if path.stem != "__init__"]
        on_disk = {f"kalshi_provider.{key}.{stem}" for stem in modules}
        declared = {module for entry in info[key] for module in entry["python-modules"]}
        assert declared == on_disk, key


def test_conn_fields_are_the_extras_the_docs_document():
    """The form writes these names into a connection's extra, the hook reads them, and users type
    them into AIRFLOW_CONN_* JSON from the table in docs/connection.md: all three must agree."""
    fields = section(REPO / "docs" / "connection.md", "The fields")
    table = "\n".join(line for line in fields.splitlines() if line.startswith("|"))
    documented = set(re.findall(r"extra `(\w+)`", table))
    assert set(_kalshi_connection_type()["conn-fields"]) == documented == set(FIELDS.values())


def test_hook_class_matches_the_declared_connection_type():
    conn_type = _kalshi_connection_type()
    assert conn_type["connection-type"] == KalshiHook.conn_type == "kalshi"
    assert conn_type["hook-class-name"] == f"{KalshiHook.__module__}.{KalshiHook.__qualname__}" == HOOK_CLASS
    assert conn_type["hook-name"] == KalshiHook.hook_name


# --- What ProvidersManager registers ------------------------------------------------------------


def test_providers_manager_registers_the_connection_type(providers_manager):
    pm = providers_manager()
    assert DIST in pm.providers
    assert pm.providers[DIST].version == metadata.version(DIST)
    # What the UI lists as connection types (read from metadata, the hook is not imported).
    types = {meta.connection_type: meta for meta in pm.iter_connection_type_hook_ui_metadata()}
    assert types["kalshi"].hook_class_name == HOOK_CLASS
    assert types["kalshi"].hook_name == "Kalshi"
    assert types["kalshi"].field_behaviour is not None


def test_hook_class_resolves_for_connections_of_type_kalshi(runtime_providers_manager):
    """``Connection.get_hook()`` (and so the Test button) finds KalshiHook through this."""
    hook = runtime_providers_manager().hooks["kalshi"]
    assert hook is not None
    assert hook.hook_class_name == HOOK_CLASS
    assert hook.package_name == DIST
    assert hook.connection_type == "kalshi"
    assert hook.connection_id_attribute_name == "kalshi_conn_id"
    assert hook.hook_name == "Kalshi"
    assert hook.connection_testable


def test_connection_form_widgets(providers_manager):
    widgets = {
        name: widget
        for name, widget in providers_manager().connection_form_widgets.items()
        if name.startswith("extra__kalshi__")
    }
    assert set(widgets) == {f"extra__kalshi__{field}" for field in FIELDS}
    for name, widget in widgets.items():
        assert widget.hook_class_name == HOOK_CLASS
        assert widget.package_name == DIST
        assert name == f"extra__kalshi__{widget.field_name}"

    def schema(field: str) -> dict:
        return widgets[f"extra__kalshi__{field}"].field["schema"]

    assert schema("private_key")["format"] == "multiline"
    assert schema("private_key")["title"] == "Private key (PEM)"
    assert schema("private_key_passphrase")["format"] == "password"
    assert widgets["extra__kalshi__private_key_passphrase"].is_sensitive
    assert schema("private_key_path")["examples"] == ["/run/secrets/kalshi_private_key"]
    assert schema("environment")["enum"] == ["production", "demo"]
    assert widgets["extra__kalshi__environment"].field["value"] == "production"
    assert "number" in schema("timeout")["type"]
    assert widgets["extra__kalshi__timeout"].field["value"] == 10
    assert "integer" in schema("max_retries")["type"]
    assert (schema("max_retries")["minimum"], schema("max_retries")["maximum"]) == (0, 4)
    assert widgets["extra__kalshi__max_retries"].field["value"] == 2
    assert schema("timeout")["maximum"] == 60


def test_extras_holding_key_material_are_masked_by_name():
    """The API redacts extras by key name (GET returns ``***``); the PEM field is not a password
    widget (it is multi-line), so its name must be one Airflow's masker knows."""
    from airflow._shared.secrets_masker import should_hide_value_for_key

    for field in ("private_key", "private_key_passphrase"):
        assert should_hide_value_for_key(field), field
    for field in ("environment", "timeout", "max_retries"):
        assert not should_hide_value_for_key(field), field


def test_field_behaviour(providers_manager):
    behaviour = providers_manager().field_behaviours["kalshi"]
    assert behaviour["hidden_fields"] == ["schema", "port", "password", "extra"]
    assert behaviour["relabeling"] == {"login": "API key ID", "host": "Base URL"}
    placeholders = behaviour["placeholders"]
    assert placeholders["login"].startswith("e.g. ")
    assert placeholders["host"].startswith("empty: https://external-api.kalshi.com/trade-api/v2")
    # Airflow namespaces placeholders of extra fields.
    assert placeholders["extra__kalshi__private_key"] == "-----BEGIN RSA PRIVATE KEY-----"
    assert placeholders["extra__kalshi__private_key_path"] == "/run/secrets/kalshi_private_key"


_FAB_MODULES = (
    "wtforms",
    "wtforms.csrf",
    "wtforms.fields",
    "wtforms.fields.simple",
    "wtforms.validators",
    "flask_babel",
    "flask_appbuilder",
    "flask_appbuilder.fieldwidgets",
)


def _legacy_form_warnings(providers_manager, runtime_providers_manager) -> list[str]:
    """Warnings raised while Airflow imports every hook for the connection form.

    Without FAB installed Airflow would skip the legacy branch on an ImportError, so this goes
    through HookMetaService's loader, which (like the API server) mocks wtforms and FAB; the mocks
    are removed again afterwards.
    """
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    absent = [name for name in _FAB_MODULES if name not in sys.modules]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            providers_manager()
            hooks, widgets, behaviours = HookMetaService._get_hooks_with_mocked_fab()
            assert hooks["kalshi"] is not None
            assert runtime_providers_manager().hooks["kalshi"] is not None
    finally:
        for name in absent:
            sys.modules.pop(name, None)
    return [
        str(w.message)
        for w in caught
        if "get_connection_form_widgets" in str(w.message) or "get_ui_field_behaviour" in str(w.message)
    ]


def test_no_deprecation_warning_for_legacy_form_methods(providers_manager, runtime_providers_manager):
    """3.2+ warns about hooks defining get_connection_form_widgets / get_ui_field_behaviour."""
    assert "get_connection_form_widgets" not in KalshiHook.__dict__
    assert "get_ui_field_behaviour" not in KalshiHook.__dict__
    legacy = _legacy_form_warnings(providers_manager, runtime_providers_manager)
    assert not any(HOOK_CLASS in message for message in legacy), legacy


def test_the_deprecation_check_would_see_a_legacy_method(
    monkeypatch, providers_manager, runtime_providers_manager
):
    """Control: a hook with get_ui_field_behaviour and no declared form does warn."""
    info = get_provider_info()
    for conn_type in info["connection-types"]:
        conn_type.pop("conn-fields")
        conn_type.pop("ui-field-behaviour")
    monkeypatch.setattr(provider_info_module, "get_provider_info", lambda: info)
    behaviour = {"hidden_fields": [], "relabeling": {}}
    monkeypatch.setattr(
        KalshiHook, "get_ui_field_behaviour", classmethod(lambda cls: behaviour), raising=False
    )
    legacy = _legacy_form_warnings(providers_manager, runtime_providers_manager)
    assert any(HOOK_CLASS in message for message in legacy), legacy


def test_the_legacy_form_methods_give_the_declared_form(monkeypatch, providers_manager):
    """Airflow 3.0 and 3.1 build the form from the hook's methods (defined only there, see the
    Airflow-line matrix): made from ``conn-fields``, they give each field the same label,
    description, default and choices as 3.3 makes from the declaration. The methods run here with
    the stand-ins for WTForms that Airflow's connection-form service puts in place."""
    from unittest import mock

    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    from kalshi_provider import legacy_connection_form as legacy_form

    declared = {
        widget.field_name: widget.field
        for name, widget in providers_manager().connection_form_widgets.items()
        if name.startswith("extra__kalshi__")
    }
    for name in _FAB_MODULES:
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name) or mock.MagicMock())
    with (
        mock.patch("wtforms.StringField", HookMetaService.MockStringField),
        mock.patch("wtforms.IntegerField", HookMetaService.MockIntegerField),
        mock.patch("wtforms.PasswordField", HookMetaService.MockPasswordField),
        mock.patch("wtforms.validators.Optional", HookMetaService.MockOptional),
        mock.patch("wtforms.validators.any_of", HookMetaService.MockEnum),
    ):
        legacy = {name: field.param.dump() for name, field in legacy_form.connection_form_widgets().items()}

    assert set(legacy) == set(declared) == set(FIELDS)
    for name, field in legacy.items():
        value = declared[name]["value"]
        assert field["value"] == (str(value) if name == "timeout" else value), name  # text field
        assert field["description"] == declared[name]["description"], name
        assert field["schema"]["title"] == declared[name]["schema"]["title"], name
        assert field["schema"].get("enum") == declared[name]["schema"].get("enum"), name
    # No multi-line field before 3.2: the key goes into a masked one-line field.
    assert legacy["private_key"]["schema"]["format"] == "password"
    assert legacy["private_key_passphrase"]["schema"]["format"] == "password"
    assert "integer" in legacy["max_retries"]["schema"]["type"]
    behaviour = legacy_form.ui_field_behaviour()
    assert behaviour["hidden_fields"] == ["schema", "port", "password", "extra"]
    assert behaviour["relabeling"] == {"login": "API key ID", "host": "Base URL"}


# --- What the UI's connection form receives -----------------------------------------------------


def test_hook_meta_for_the_ui(providers_manager):
    """The data of ``GET /ui/connections/hook_meta``, which the React form is built from."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    providers_manager()
    [meta] = [m for m in HookMetaService.hook_meta_data.__wrapped__() if m.connection_type == "kalshi"]
    assert meta.hook_class_name == HOOK_CLASS
    assert meta.hook_name == "Kalshi"
    standard = meta.standard_fields
    assert standard.login.title == "API key ID"
    assert standard.login.placeholder.startswith("e.g. ")
    assert standard.host.title == "Base URL"
    assert standard.host.placeholder.startswith("empty: ")
    assert standard.password.hidden and standard.port.hidden and standard.url_schema.hidden
    # Extra fields reach the form under their plain names: the names the form writes into extra.
    assert set(meta.extra_fields) == set(FIELDS)
    assert meta.extra_fields["private_key"]["schema"]["format"] == "multiline"
    assert meta.extra_fields["private_key_passphrase"]["schema"]["format"] == "password"
    assert meta.extra_fields["environment"]["schema"]["enum"] == ["production", "demo"]
    # 3.3's hook_meta carries placeholders for standard fields only; a hint for an extra field
    # has to be in its schema (the form shows "examples" as suggestions).
    assert meta.extra_fields["private_key_path"]["schema"]["examples"] == ["/run/secrets/kalshi_private_key"]
