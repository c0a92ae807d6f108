# syntax=docker/dockerfile:1
#
# Airflow 3.3.2 with this provider installed, for docker-compose.yaml (`build: .`).
#
# Installing the distribution `airflow-provider-kalshi` (not only mounting plugins/) is what makes
# the `kalshi` connection type and its form appear: Airflow reads connection types only from an
# installed distribution's `apache_airflow_provider` entry point.
#
# The Kalshi private key is never part of the image or of the build context (.dockerignore keeps
# keys, .env and state out): compose mounts it at run time as the secret
# /run/secrets/kalshi_private_key.
FROM apache/airflow:3.3.2

# The pinned runtime dependencies CI tests with (requirements.txt pins apache-airflow==3.3.2 too,
# so pip keeps the image's Airflow as it is). As the image's docs ask: install as user airflow.
COPY --chown=airflow:0 requirements.txt /tmp/airflow-provider-kalshi/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        -r /tmp/airflow-provider-kalshi/requirements.txt

# The provider itself. --no-deps: all it needs is pinned above. Not editable: the image holds the
# code that runs; rebuild after a change (`docker compose up -d --build`).
COPY --chown=airflow:0 pyproject.toml README.md /tmp/airflow-provider-kalshi/
COPY --chown=airflow:0 plugins/kalshi_provider /tmp/airflow-provider-kalshi/plugins/kalshi_provider
RUN pip install --no-cache-dir --no-deps /tmp/airflow-provider-kalshi \
    && rm -rf /tmp/airflow-provider-kalshi \
    && python -c "from importlib.metadata import entry_points; \
assert 'kalshi_provider.get_provider_info:get_provider_info' in {e.value for e in entry_points(group='apache_airflow_provider')}"
