"""End to end with MLflow on a PostgreSQL tracking store: the test runs its own throwaway cluster
(support/postgres.py: initdb in a temp dir, a free port, as the `postgres` user when root) and
`mlflow server --backend-store-uri postgresql://...`; traces sent through the proxy are read back
through MLflow's REST API and found in PostgreSQL's own tables. Without the PostgreSQL binaries
the test fails with what to install: CI installs them (scripts/lib.sh TEST_PACKAGES)."""
from __future__ import annotations

import concurrent.futures

import pytest

from support.mlflow_server import MlflowServer
from support.net import wait_until
from support.otel_clients import assert_trace_matches, send_koog_trace
from support.postgres import PostgresCluster, PostgresUnavailable

KOOG_SPANS = 6
VERBOSE = {"default_route": {"policy": "verbose"}, "exporter": {"concurrency": 4}}
WAIT = 60.0


@pytest.fixture(scope="module")
def postgres_mlflow(tmp_path_factory):
    try:
        cluster = PostgresCluster()
    except PostgresUnavailable as e:
        pytest.fail(str(e), pytrace=False)
    cluster.start()
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-postgres"),
                          backend_store_uri=cluster.uri)
    try:
        try:
            server.start()
        except RuntimeError as e:
            pytest.fail(f"{e}\npostgres log tail:\n{cluster.log_tail()}", pytrace=False)
        yield server, cluster
    finally:
        server.stop()
        cluster.stop()


@pytest.mark.mlflow36
def test_traces_through_the_proxy_land_in_postgres(postgres_mlflow, start_proxy, unique_name):
    server, cluster = postgres_mlflow
    name = unique_name("pg")
    proxy = start_proxy(config=VERBOSE, experiment_name=name, mlflow_url=server.url)

    # Several agents at once: the exporter's concurrent requests are concurrent writers, which
    # PostgreSQL takes side by side (SQLite serializes them).
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        sent = list(pool.map(lambda i: send_koog_trace(proxy.url, agent=f"agent-{i}",
                                                       service_name=name), range(4)))
    for trace in sent:
        assert trace.all_exports_succeeded, f"{trace.export_results}\n{proxy.describe()}"

    try:
        experiment_id = wait_until(lambda: server.experiment_id_by_name(name), WAIT,
                                   what=f"experiment {name!r}")
    except TimeoutError as e:
        raise AssertionError(f"the proxy did not create {name!r}: {e}\n{proxy.describe()}")
    for trace in sent:
        got = server.wait_for_spans(experiment_id, trace.trace_id, KOOG_SPANS, timeout=WAIT,
                                    require_complete=True, diagnostics=proxy.describe)
        assert_trace_matches(trace, got)
        assert got.state == "OK", got.dump()

    # The spans are PostgreSQL rows, not a silent fallback to some other store.
    rows = dict(cluster.query(
        "SELECT trace_id, count(*) FROM spans WHERE experiment_id = %s GROUP BY trace_id",
        int(experiment_id)))
    assert rows == {t.mlflow_trace_id: KOOG_SPANS for t in sent}, rows
    assert sorted(server.trace_ids(experiment_id)) == sorted(rows)
