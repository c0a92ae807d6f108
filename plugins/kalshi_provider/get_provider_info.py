"""Provider metadata for Airflow's ``apache_airflow_provider`` entry point.

Airflow reads this dict when it lists providers, builds the connection form (3.2+: from
``conn-fields`` and ``ui-field-behaviour``) and finds the plugin. Import-light on purpose.
"""

from __future__ import annotations

from kalshi_provider import __version__
from kalshi_provider.config_declaration import CONFIG
from kalshi_provider.connection import (
    BASE_URLS,
    EXTRA_ENVIRONMENT,
    EXTRA_MAX_RETRIES,
    EXTRA_PASSPHRASE,
    EXTRA_PRIVATE_KEY,
    EXTRA_PRIVATE_KEY_PATH,
    EXTRA_TIMEOUT,
)
from kalshi_provider.endpoint_assets import SCHEMES
from kalshi_provider.limits import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    MAX_RETRIES_LIMIT,
    MAX_TIMEOUT_SECONDS,
)

_STRING = ["string", "null"]
#: Where docker-compose.yaml mounts the Kalshi key (a compose secret) in the containers.
KEY_SECRET_PATH = "/run/secrets/kalshi_private_key"


def get_provider_info() -> dict:
    """Provider metadata for Airflow's ``apache_airflow_provider`` entry point.

    Since Airflow 3.2 the connection form is built only from ``conn-fields`` and
    ``ui-field-behaviour`` here; field names are the extras ``KalshiHook`` reads.
    """
    return {
        "package-name": "airflow-provider-kalshi",
        "name": "Kalshi",
        "description": "Signed access to Kalshi's Trade API v2 and an hourly resting-order-value pipeline.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Kalshi",
                "external-doc-url": "https://docs.kalshi.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Kalshi", "python-modules": ["kalshi_provider.hooks.kalshi"]}],
        "operators": [{"integration-name": "Kalshi", "python-modules": ["kalshi_provider.operators.kalshi"]}],
        # Hook-level lineage names Kalshi's endpoints with these schemes; the converter gives
        # Airflow's OpenLineage provider their dataset names (see kalshi_provider/endpoint_assets.py).
        "asset-uris": [
            {
                "schemes": sorted(SCHEMES),
                "handler": "kalshi_provider.endpoint_assets.sanitize_uri",
                "factory": "kalshi_provider.endpoint_assets.create_asset",
                "to_openlineage_converter": "kalshi_provider.endpoint_assets.convert_asset_to_openlineage",
            }
        ],
        # ``airflow config list`` shows the section, and its declared defaults apply where a
        # deployment sets nothing.
        "config": CONFIG,
        # No "plugins" key: the chart belongs to the pipelines built on this provider, and the
        # distribution registers it through its own ``airflow.plugins`` entry point instead.
        # `airflow kalshi-warehouse status|migrate`: Airflow 3.2+ add a distribution's commands only
        # from this key (there is no entry point for them), so it is the one name of a pipelines
        # module here; Airflow imports it only to build its CLI. 3.0 and 3.1 do not read the key and
        # get the same command as the console script `kalshi-warehouse`.
        "cli": ["kalshi_provider.pipelines.warehouse_cli.get_cli_commands"],
        "connection-types": [
            {
                "connection-type": "kalshi",
                "hook-class-name": "kalshi_provider.hooks.kalshi.KalshiHook",
                "hook-name": "Kalshi",
                "conn-fields": {
                    EXTRA_PRIVATE_KEY: {
                        "label": "Private key (PEM)",
                        "description": "The PEM file's whole text, RSA (PKCS#1 or PKCS#8) or Ed25519. "
                        "Leave empty when 'Private key path' is set.",
                        "schema": {"type": _STRING, "format": "multiline"},
                    },
                    EXTRA_PRIVATE_KEY_PATH: {
                        "label": "Private key path",
                        "description": "Path to a PEM file on the workers and the API server, e.g. a "
                        "mounted secret. Leave empty when the PEM is pasted above.",
                        # The 3.3 UI drops ui-field-behaviour placeholders of extra fields; it shows
                        # a field's schema "examples" as suggestions instead.
                        "schema": {"type": _STRING, "examples": [KEY_SECRET_PATH]},
                    },
                    EXTRA_PASSPHRASE: {
                        "label": "Private key passphrase",
                        "description": "Only for an encrypted PEM.",
                        "schema": {"type": _STRING, "format": "password"},
                    },
                    EXTRA_ENVIRONMENT: {
                        "label": "Environment",
                        "description": "Which Kalshi the key belongs to; used when Base URL is empty.",
                        "schema": {
                            "type": _STRING,
                            "enum": ["production", "demo"],
                            "default": "production",
                        },
                    },
                    EXTRA_TIMEOUT: {
                        "label": "Timeout (seconds)",
                        "description": "Wall-clock limit of one attempt, answer included "
                        f"(at most {MAX_TIMEOUT_SECONDS:g}).",
                        "schema": {
                            "type": ["number", "null"],
                            "default": DEFAULT_TIMEOUT_SECONDS,
                            "exclusiveMinimum": 0,
                            "maximum": MAX_TIMEOUT_SECONDS,
                        },
                    },
                    EXTRA_MAX_RETRIES: {
                        "label": "Max retries",
                        "description": "Retries within one call for connection errors, timeouts, 429 "
                        f"and 5xx (0-{MAX_RETRIES_LIMIT}).",
                        "schema": {
                            "type": ["integer", "null"],
                            "default": DEFAULT_MAX_RETRIES,
                            "minimum": 0,
                            "maximum": MAX_RETRIES_LIMIT,
                        },
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "password", "extra"],
                    "relabeling": {"login": "API key ID", "host": "Base URL"},
                    "placeholders": {
                        "login": "e.g. a952bcbe-ec3b-4b5b-b8f9-11dae589608c",
                        "host": f"empty: {BASE_URLS['production']} (or demo)",
                        EXTRA_PRIVATE_KEY: "-----BEGIN RSA PRIVATE KEY-----",
                        EXTRA_PRIVATE_KEY_PATH: KEY_SECRET_PATH,
                    },
                },
            }
        ],
    }
