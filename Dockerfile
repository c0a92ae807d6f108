# syntax=docker/dockerfile:1
#
# The official Airflow 3.3.2 image plus this provider's BUILT WHEEL and the DAG files, for
# docker-compose.yaml (`build: .`) and Airflow's official Helm chart alike: nothing is bind-mounted.
#
# - The wheel, not the source tree, is what a data team installs: the `kalshi` connection type
#   and form (apache_airflow_provider entry point), the chart page (airflow.plugins entry point)
#   and the DAG factories. The simulator and the tests are not in it.
# - As Airflow's "extend the image" docs ask: install as user airflow, name the image's own
#   Airflow version and use the image's constraints file, so pip can neither move Airflow nor the
#   libraries it was released with (a conflict fails the build instead).
# - The Kalshi private key is never part of the image or of the build context (.dockerignore keeps
#   keys, .env and state out): compose mounts it at run time as the secret
#   /run/secrets/kalshi_private_key, the Helm chart as a Kubernetes Secret (README).
FROM apache/airflow:3.3.2 AS wheel
# The wheel, built the way a release is: setuptools from pyproject.toml, no dependencies bundled.
COPY --chown=airflow:0 pyproject.toml README.md LICENSE /tmp/airflow-provider-kalshi/
COPY --chown=airflow:0 plugins/kalshi_provider /tmp/airflow-provider-kalshi/plugins/kalshi_provider
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/dist /tmp/airflow-provider-kalshi

FROM apache/airflow:3.3.2
COPY --from=wheel --chown=airflow:0 /tmp/dist/ /tmp/dist/
# psycopg (v3): the driver the test suite runs the PostgreSQL warehouse with. With it installed,
# the image's postgres provider (6.3 or later, on SQLAlchemy 2) builds the warehouse's engine on
# psycopg 3 instead of psycopg2, which the image also has but the suite does not test. The provider
# itself is the image's: naming its version here could clash with the one the image pins.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        /tmp/dist/airflow_provider_kalshi-*.whl "psycopg[binary]" \
        --constraint "${HOME}/constraints.txt" \
    && rm -rf /tmp/dist \
    && python -c "from importlib.metadata import entry_points as e; \
assert 'kalshi_provider.get_provider_info:get_provider_info' in {p.value for p in e(group='apache_airflow_provider')}; \
assert 'kalshi_provider.pipelines.ui.plugin:KalshiUIPlugin' in {p.value for p in e(group='airflow.plugins')}"

# The DAG files: a few lines each calling the factories in the installed wheel.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
