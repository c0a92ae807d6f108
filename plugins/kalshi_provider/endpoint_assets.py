"""Kalshi's API endpoints as Airflow asset URIs, and their OpenLineage dataset names.

The hook reports each endpoint it read as an ``Asset``. OpenLineage converts an asset only through
its scheme's registered converter, so the provider registers its own schemes, ``kalshi+https``
(``kalshi+http`` for the loopback simulator), leaving ``https`` alone. Names follow OpenLineage's
proposals for URL datasources (issues #1148, #4360): namespace scheme and host (port if not the
default), name the path. Never user info, a query or a fragment. Import-light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

if TYPE_CHECKING:
    from airflow.sdk import Asset

#: Asset URI scheme -> the scheme of the URL it stands for.
SCHEMES = {"kalshi+https": "https", "kalshi+http": "http"}
_DEFAULT_PORTS = {"https": 443, "http": 80}


def kalshi_asset_uri(base_url: str, path: str) -> str:
    """The asset URI of ``path`` (e.g. ``/portfolio/balance``) under a connection's base URL."""
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    if f"kalshi+{scheme}" not in SCHEMES or not parts.hostname:
        raise ValueError(f"not a Kalshi base URL: {scheme}://...")
    full_path = parts.path.rstrip("/") + "/" + path.lstrip("/")
    return urlunsplit(sanitize_uri(SplitResult(f"kalshi+{scheme}", parts.netloc, full_path, "", "")))


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's normaliser for the Kalshi schemes: lower-case host, no default port, no user info,
    query or fragment, and a path."""
    scheme = uri.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"not a Kalshi asset URI scheme: {scheme}")
    if not uri.hostname:
        raise ValueError(f"a {scheme}:// asset URI must name a host")
    if not uri.path.startswith("/") or uri.path == "/":
        raise ValueError(f"a {scheme}:// asset URI must name an endpoint path")
    return SplitResult(scheme, _netloc(uri, _DEFAULT_PORTS[SCHEMES[scheme]]), uri.path, "", "")


def create_asset(*, base_url: str, path: str, extra: dict[str, Any] | None = None) -> Asset:
    """The ``Asset`` of one Kalshi endpoint (Airflow's asset factory for the Kalshi schemes)."""
    from airflow.sdk import Asset

    return Asset(uri=kalshi_asset_uri(base_url, path), extra=extra or {})


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any) -> Any:
    """The OpenLineage dataset of a Kalshi asset: namespace ``https://host[:port]``, name the path."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(asset.uri)
    return Dataset(namespace=f"{SCHEMES[parts.scheme]}://{parts.netloc}", name=parts.path)


def _netloc(parts: SplitResult, default_port: int) -> str:
    """Host (lower case, IPv6 in brackets) and a port other than the default; never user info."""
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    port = parts.port
    return f"{netloc}:{port}" if port and port != default_port else netloc
