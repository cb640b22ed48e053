"""End to end against the MLflow that MLFLOW_BIN runs: the latest (tests/requirements.txt) and, in
scripts/test.sh's version matrix (-m mlflow36), 3.6.0, the oldest with OTLP ingestion.

The proxy reads GET /version and sends gzip only to 3.7 and newer (3.6 reads the body as raw
protobuf and answers 400 to gzip). And with Koog 1.0.0, which sends token counts as strings,
MLflow 3.6 answers 422 to the agent's own exports; through the proxy, whose normalization makes
them integers, the same run lands complete."""
from __future__ import annotations

import re

import pytest

from koog_runner import AGENT_ID, SPAN_NAMES, run_koog_agent
from support.admin import scrape
from support.net import wait_until
from support.otel_clients import assert_trace_matches, send_koog_trace

VERBOSE = {"default_route": {"policy": "verbose"}}
KOOG_SPANS = 6
WAIT = 60.0


def _version(mlflow) -> tuple[int, int]:
    major, minor = re.match(r"(\d+)\.(\d+)", mlflow.version()).groups()
    return int(major), int(minor)


@pytest.mark.mlflow36
def test_proxy_reads_the_version_and_gzips_only_where_mlflow_decodes_it(mlflow, start_proxy,
                                                                        unique_name):
    version = mlflow.version()
    gzip = _version(mlflow) >= (3, 7)
    proxy = start_proxy(config=VERBOSE, experiment_name=unique_name("versions"))
    pattern = rf"MLflow {re.escape(version)} at {re.escape(mlflow.url)}; sending (\S+)"
    sending = wait_until(lambda: re.search(pattern, proxy.log_text()), 15,
                         what=f"the version line in the proxy's log").group(1)
    assert sending == ("gzip" if gzip else "uncompressed"), proxy.describe()

    sent = send_koog_trace(proxy.url)
    assert sent.all_exports_succeeded, f"{sent.export_results}\n{proxy.describe()}"
    got = mlflow.wait_for_spans(None, sent.trace_id, KOOG_SPANS, timeout=WAIT,
                                require_complete=True, diagnostics=proxy.describe)
    assert_trace_matches(sent, got)

    metrics = scrape(proxy)
    assert metrics.value("otlp_mlflow_proxy_upstream_mlflow_info", version=version,
                         accepts_gzip="true" if gzip else "false") == 1
    gzipped = metrics.value("otlp_mlflow_proxy_upstream_gzip_requests_total")
    assert (gzipped > 0) == gzip, metrics.text
    assert metrics.total("otlp_mlflow_proxy_upstream_requests_total", status="400") == 0
    assert metrics.value("otlp_mlflow_proxy_upstream_gzip_refused_total") == 0


@pytest.mark.mlflow36
def test_koog_straight_to_mlflow_36_fails_where_the_proxy_succeeds(mlflow, start_proxy,
                                                                   unique_name, koog_jar):
    if _version(mlflow) >= (3, 7):
        pytest.skip(f"MLflow {mlflow.version()}: the 422 to Koog's string token counts is 3.6's")
    direct = mlflow.create_experiment(unique_name("koog-direct"))
    run = run_koog_agent(mlflow.url, verbose=True, service_name="koog-direct", jar=koog_jar,
                         headers={"x-mlflow-experiment-id": direct})
    assert run.export_results and not run.all_exports_succeeded, run.describe()
    assert mlflow.trace_ids(direct) == [], "MLflow 3.6 stored Koog's trace after all"

    name = unique_name("koog-proxy")
    proxy = start_proxy(config=VERBOSE, experiment_name=name)
    run = run_koog_agent(proxy, verbose=True, service_name=name, jar=koog_jar)
    assert run.returncode == 0 and run.all_exports_succeeded, f"{run.describe()}\n{proxy.describe()}"
    got = mlflow.wait_for_spans(None, run.trace_id, len(SPAN_NAMES), timeout=WAIT,
                                require_complete=True, diagnostics=proxy.describe)
    assert sorted(s.name for s in got.spans) == sorted(SPAN_NAMES), got.dump()
    assert got.span(f"create_agent {AGENT_ID}").parent_span_id is None
    assert scrape(proxy).total("otlp_mlflow_proxy_upstream_requests_total", status="422") == 0
