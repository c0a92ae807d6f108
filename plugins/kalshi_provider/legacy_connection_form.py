"""The Kalshi connection form for Airflow 3.0 and 3.1, made from the provider info's ``conn-fields``.

Airflow 3.2+ build the form from ``conn-fields`` and ``ui-field-behaviour``; 3.0 and 3.1 call the
hook's ``get_connection_form_widgets`` and ``get_ui_field_behaviour`` instead. Both come from one
declaration, so they cannot disagree. The API server calls these with its own WTForms stand-ins,
so only the classes it replaces are used: ``StringField``, ``PasswordField``, ``IntegerField``,
``Optional`` and ``any_of``.
"""

from __future__ import annotations

from typing import Any


def _kalshi_connection_type() -> dict[str, Any]:
    from kalshi_provider.get_provider_info import get_provider_info

    [conn_type] = get_provider_info()["connection-types"]
    return conn_type


def connection_form_widgets(connection_type: dict[str, Any] | None = None) -> dict[str, Any]:
    """One WTForms field per declared extra, keyed by the extra's name.

    :param connection_type: The provider info's entry for the connection type; Kalshi's by default.
    """
    from wtforms import IntegerField, PasswordField, StringField
    from wtforms.validators import Optional, any_of

    widgets: dict[str, Any] = {}
    for name, field in (connection_type or _kalshi_connection_type())["conn-fields"].items():
        schema = field["schema"]
        default = schema.get("default")
        validators = [Optional()]
        if "enum" in schema:
            validators.append(any_of(schema["enum"]))
        if schema.get("format") in ("password", "multiline"):
            # No multi-line field before 3.2: the PEM goes into a masked one-line field, and the
            # key loader restores the line breaks such a field drops.
            field_class = PasswordField
        elif "integer" in schema["type"]:
            field_class = IntegerField
        else:
            # Text, and numbers: a float field is not among the classes Airflow accepts here, and
            # the hook reads a number given as text.
            field_class = StringField
            default = None if default is None else str(default)
        widgets[name] = field_class(
            field["label"], validators=validators, description=field.get("description", ""), default=default
        )
    return widgets


def ui_field_behaviour(connection_type: dict[str, Any] | None = None) -> dict[str, Any]:
    """The declared ``ui-field-behaviour``, under the method's key names.

    :param connection_type: The provider info's entry for the connection type; Kalshi's by default.
    """
    behaviour = (connection_type or _kalshi_connection_type())["ui-field-behaviour"]
    return {
        "hidden_fields": list(behaviour.get("hidden-fields", [])),
        "relabeling": dict(behaviour.get("relabeling", {})),
        "placeholders": dict(behaviour.get("placeholders", {})),
    }
