"""End to end over TLS: a real MLflow server serving https:// (uvicorn's own TLS, through
`mlflow server --uvicorn-opts`), with a certificate from a CA made at test time; the proxy trusts
that CA through MLflow's own MLFLOW_TRACKING_SERVER_CERT_PATH, creates the experiment by name over
the REST API, delivers the trace over OTLP, and the trace is read back through the REST API."""
from __future__ import annotations

import pytest

from support.mlflow_server import MlflowServer
from support.otel_clients import send_koog_trace
from support.proxy_process import ProxyProcess
from support.tls_certs import make_certificates

KOOG_SPANS = 6


@pytest.fixture(scope="module")
def tls_mlflow(tmp_path_factory):
    certs = make_certificates(tmp_path_factory.mktemp("certs"))
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-tls"), warmup=False,
                          tls=(certs.path("server.pem"), certs.path("server.key"), certs.path("ca.pem")))
    server.start()
    try:
        yield server, certs
    finally:
        server.stop()


def test_trace_reaches_mlflow_behind_tls(tls_mlflow, proxy_binary, tmp_path, unique_name,
                                         proxy_log_report):
    server, certs = tls_mlflow
    assert server.url.startswith("https://")
    name = unique_name("tls")
    proxy = ProxyProcess(tmp_path, binary=proxy_binary, mlflow_url=server.url,
                         experiment_name=name,
                         env={"MLFLOW_TRACKING_SERVER_CERT_PATH": certs.path("ca.pem")})
    proxy_log_report([proxy])
    with proxy:
        sent = send_koog_trace(proxy.url, timeout=60)
        assert sent.all_exports_succeeded, f"export results {sent.export_results}\n{proxy.describe()}"
        # MLflow's first GenAI trace is slow (lazy imports): a generous wait.
        got = server.wait_for_spans(None, sent.trace_id, KOOG_SPANS, timeout=120,
                                    require_complete=True, diagnostics=proxy.describe)
        experiment = server.get_experiment_by_name(name)
        assert experiment is not None and got.experiment_id == experiment["experiment_id"]
        assert len(got.spans) == KOOG_SPANS, got.dump()
        assert [s.name for s in got.roots] == ["create_agent math-agent"], got.dump()
        # Content is masked by the default policy; the structure and ids arrive intact.
        assert sorted(s.span_id for s in got.spans) == sorted(s.span_id for s in sent.spans.values())
    assert "TLS handshake" not in proxy.log_text()
