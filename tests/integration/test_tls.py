"""TLS and authentication, against the real binary with certificates made at test time
(tests/support/tls_certs.py): upstream https:// MLflow (a CA file, an unknown CA, a host name
mismatch, insecure mode, mutual TLS, MLflow's own variables, credentials on every call), bad
files at start and in --check-config, inbound TLS and mutual TLS on OTLP/HTTP with the real
OpenTelemetry SDK exporter, plaintext and stalled clients on the TLS port, the bearer token on
HTTP, and secrets kept out of logs, --check-config and the admin endpoint."""
from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import time

import pytest
import requests

from support.admin import readiness, scrape, wait_ready
from support.delivery import numbered_request, post
from support.fake_mlflow import FakeMlflow
from support.net import free_port, wait_until
from support.proxy_process import ProxyProcess
from support.tls_certs import Certificates, make_certificates

FAST_RETRY = {"initial_backoff": "50ms", "max_backoff": "300ms"}
REJECTS = "otlp_mlflow_proxy_receiver_rejects_total"


@pytest.fixture(autouse=True)
def no_ca_bundle_override(monkeypatch):
    """requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace a session's own CA file (the
    SDK exporter's certificate_file), so a machine that sets them would fail these tests."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def fakes():
    """fakes(**FakeMlflow kwargs) -> a started fake MLflow, stopped at teardown."""
    started: list[FakeMlflow] = []

    def start(**kwargs) -> FakeMlflow:
        fake = FakeMlflow(**kwargs).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


@pytest.fixture
def tls_proxy(proxy_factory):
    """tls_proxy(config dict, **ProxyProcess kwargs) -> a started proxy with fast retries and a
    short shutdown_timeout (tests/integration/conftest.py proxy_factory)."""
    def start(config: dict | None = None, **kwargs) -> ProxyProcess:
        config = json.loads(json.dumps(config or {}))
        config.setdefault("exporter", {}).setdefault("retry", dict(FAST_RETRY))
        config.setdefault("admin", {}).setdefault("probe_interval", "200ms")
        config.setdefault("shutdown_timeout", "300ms")
        return proxy_factory(config, **kwargs)

    return start


def send(proxy: ProxyProcess, spans: int = 2) -> list[str]:
    request, ids = numbered_request(spans)
    status, _ = post(proxy.host, proxy.port, request.SerializeToString())
    assert status == 200
    return ids


def wait_for_log(proxy: ProxyProcess, text: str, timeout: float = 15.0) -> str:
    return wait_until(lambda: text in (log := proxy.log_text()) and log, timeout,
                      what=f"{text!r} in the proxy log")


def check_config(proxy_binary, config: dict, tmp_path, env: dict | None = None):
    path = tmp_path / "check.yaml"
    path.write_text(json.dumps(config))
    return subprocess.run([str(proxy_binary), "--check-config", "--config", str(path)],
                          capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})


# ---- upstream: https:// MLflow ----------------------------------------------------------------

def test_ca_file_delivers_over_reused_connections(certs, fakes, tls_proxy):
    fake = fakes(ssl_context=certs.server_context())
    proxy = tls_proxy({"mlflow": {"url": fake.url, "experiment_name": "tls-experiment",
                                  "tls": {"ca_file": certs.path("ca.pem")}},
                       "exporter": {"concurrency": 1}}, mlflow_url=None)
    ids = []
    for _ in range(8):  # one at a time, so each is its own export on the kept-alive connection
        ids += send(proxy)
        fake.wait_for_spans(len(ids))
    assert sorted(fake.delivered_span_ids()) == sorted(ids)
    assert fake.creates == ["tls-experiment"]  # the REST calls went over TLS too
    wait_ready(proxy, True)  # and so does the /health probe
    # 8 exports, 2 lookups, 1 create and the probes over the worker's, the resolver's and the
    # probe's connections: reused, not one per request.
    assert fake.connections <= 4, fake.connections
    assert len(fake.requests) >= 11
    assert fake.tls_failures == []


def test_unknown_ca_is_refused_clearly_and_the_spans_wait_for_the_right_one(
        certs, fakes, tls_proxy, tmp_path):
    fake = fakes(ssl_context=certs.server_context())
    config = {"mlflow": {"url": fake.url, "experiment_id": "7",
                         "tls": {"ca_file": certs.path("other-ca.pem")}},
              "queue": {"durability": "disk", "state_dir": str(tmp_path / "spool")},
              "shutdown_timeout": "500ms"}
    wrong = tls_proxy(config, mlflow_url=None)
    ids = send(wrong, 3)
    log = wait_for_log(wrong, "spans for experiment 7 kept")
    assert (f"TLS handshake with MLflow at {fake.url} failed: certificate verify failed: "
            "unable to get local issuer certificate; 3 spans for experiment 7 kept") in log
    assert "mlflow.tls.ca_file (or MLFLOW_TRACKING_SERVER_CERT_PATH)" in log  # the hint
    body = wait_ready(wrong, False, reason="certificate verify failed")
    assert "TLS handshake" in body
    assert scrape(wrong).value("otlp_mlflow_proxy_upstream_tls_handshake_failures_total") >= 1
    assert fake.delivered() == [] and fake.requests == []
    wrong.stop()  # the spans stay in the spool: not acknowledged upstream, never lost

    config["mlflow"]["tls"]["ca_file"] = certs.path("ca.pem")
    right = tls_proxy(config, mlflow_url=None)
    assert sorted(fake.wait_for_spans(3)) == sorted(ids)
    assert right.running()


def test_host_name_mismatch_is_refused(certs, fakes, tls_proxy):
    fake = fakes(ssl_context=certs.server_context("wrong-host"))
    # Memory queue: spans MLflow never takes are dead-lettered at the stop, exit code 1.
    by_address = tls_proxy({"mlflow": {"url": fake.url, "experiment_id": "1",
                                       "tls": {"ca_file": certs.path("ca.pem")}}}, mlflow_url=None,
                           expect_exit_code=1)
    send(by_address)
    wait_for_log(by_address, "failed: certificate verify failed: IP address mismatch; 2 spans")
    by_name = tls_proxy({"mlflow": {"url": f"https://localhost:{fake.port}", "experiment_id": "1",
                                    "tls": {"ca_file": certs.path("ca.pem")}}}, mlflow_url=None,
                        expect_exit_code=1)
    send(by_name)
    log = wait_for_log(by_name, "failed: certificate verify failed: hostname mismatch; 2 spans")
    assert "does not name the host of mlflow.url" in log
    time.sleep(0.3)
    assert fake.delivered() == []


def test_insecure_mode_delivers_and_warns_from_the_file_and_from_mlflow_variable(
        certs, fakes, tls_proxy):
    fake = fakes(ssl_context=certs.server_context("wrong-host"))
    from_file = tls_proxy({"mlflow": {"url": fake.url, "experiment_id": "1",
                                      "tls": {"insecure_skip_verify": True}}}, mlflow_url=None)
    wait_for_log(from_file, "is NOT verified")
    ids = send(from_file)
    assert sorted(fake.wait_for_spans(2)) == sorted(ids)

    from_env = tls_proxy({"mlflow": {"experiment_id": "1"}}, mlflow_url=None,
                         env={"MLFLOW_TRACKING_URI": fake.url, "MLFLOW_TRACKING_INSECURE_TLS": "true"})
    wait_for_log(from_env, "is NOT verified")
    ids += send(from_env)
    assert sorted(fake.wait_for_spans(4)) == sorted(ids)


def test_mutual_tls_upstream_required_then_provided(certs, fakes, tls_proxy):
    fake = fakes(ssl_context=certs.server_context(client_ca="ca.pem"))
    tls = {"ca_file": certs.path("ca.pem")}
    anonymous = tls_proxy({"mlflow": {"url": fake.url, "experiment_id": "1", "tls": tls}},
                          mlflow_url=None, expect_exit_code=1)
    send(anonymous)
    log = wait_for_log(anonymous, f"TLS handshake with MLflow at {fake.url} failed")
    assert "mlflow.tls.client_cert_file" in log  # the hint
    assert fake.delivered() == []
    anonymous.stop()  # memory queue: the undelivered spans are dead-lettered (exit 1)

    tls.update(client_cert_file=certs.path("client.pem"), client_key_file=certs.path("client.key"))
    with_cert = tls_proxy({"mlflow": {"url": fake.url, "experiment_id": "1", "tls": tls}},
                          mlflow_url=None)
    ids = send(with_cert)
    assert sorted(fake.wait_for_spans(2)) == sorted(ids)


def test_mlflow_variables_give_ca_client_certificate_and_credentials_to_every_call(
        certs, fakes, tls_proxy):
    fake = fakes(ssl_context=certs.server_context(client_ca="ca.pem"))
    env = {"MLFLOW_TRACKING_URI": fake.url,
           "MLFLOW_TRACKING_SERVER_CERT_PATH": certs.path("ca.pem"),
           "MLFLOW_TRACKING_CLIENT_CERT_PATH": certs.path("client-with-key.pem"),
           "MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "pw-1"}
    proxy = tls_proxy({"mlflow": {"experiment_name": "env-experiment"}}, mlflow_url=None, env=env)
    ids = send(proxy)
    assert sorted(fake.wait_for_spans(2)) == sorted(ids)
    wait_ready(proxy, True)
    basic = "Basic " + base64.b64encode(b"alice:pw-1").decode()
    paths = {path for _, path, _ in fake.requests}
    assert {"/v1/traces", "/api/2.0/mlflow/experiments/get-by-name",
            "/api/2.0/mlflow/experiments/create", "/health"} <= paths
    assert all(headers.get("Authorization") == basic for _, _, headers in fake.requests)
    proxy.stop()

    # A token alone travels as Bearer, as MLflow's client sends it.
    env.pop("MLFLOW_TRACKING_USERNAME")
    env.pop("MLFLOW_TRACKING_PASSWORD")
    env["MLFLOW_TRACKING_TOKEN"] = "tok-1"
    fake.requests.clear()
    bearer = tls_proxy({"mlflow": {"experiment_name": "env-experiment"}}, mlflow_url=None, env=env)
    ids += send(bearer)
    fake.wait_for_spans(4)
    assert fake.requests and all(h.get("Authorization") == "Bearer tok-1" for _, _, h in fake.requests)


def test_bad_tls_files_fail_the_start_and_check_config(certs, proxy_binary, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    https = "https://127.0.0.1:1"
    cases = [
        ({"mlflow": {"url": https, "tls": {"ca_file": str(tmp_path / "missing.pem")}}}, {},
         "mlflow.tls.ca_file (MLFLOW_TRACKING_SERVER_CERT_PATH): cannot read"),
        ({"mlflow": {"url": https, "tls": {"ca_file": str(garbage)}}}, {},
         "holds no usable CA certificate"),
        ({"mlflow": {"url": https}}, {"MLFLOW_TRACKING_SERVER_CERT_PATH": str(garbage)},
         "MLFLOW_TRACKING_SERVER_CERT_PATH): \"" + str(garbage) + "\" holds no usable CA"),
        ({"mlflow": {"url": https, "tls": {"client_cert_file": certs.path("client.pem"),
                                            "client_key_file": certs.path("server.key")}}}, {},
         "does not match the certificate"),
        ({"mlflow": {"url": https}}, {"MLFLOW_TRACKING_CLIENT_CERT_PATH": certs.path("client.pem")},
         "no client_key_file: the key must be in it"),
        ({"receiver": {"tls": {"cert_file": certs.path("server.pem"),
                               "key_file": str(tmp_path / "missing.key")}}}, {},
         "receiver.tls.key_file: cannot read"),
        ({"receiver": {"tls": {"cert_file": certs.path("server.pem"), "key_file": certs.path("server.key"),
                               "client_ca_file": str(garbage)}}}, {},
         "receiver.tls.client_ca_file: \"" + str(garbage) + "\" holds no usable CA"),
    ]
    for config, env, message in cases:
        shown = check_config(proxy_binary, config, tmp_path, env)
        assert shown.returncode == 1 and message in shown.stderr, (config, env, shown.stderr)
        assert "BEGIN" not in shown.stderr  # never a file's content
    # Starting fails the same way, before any port opens.
    path = tmp_path / "start.yaml"
    path.write_text(json.dumps(cases[0][0]))
    started = subprocess.run([str(proxy_binary), "--config", str(path), "--listen",
                              f"127.0.0.1:{free_port()}", "--grpc-listen", "off", "--admin-listen", "off"],
                             capture_output=True, text=True, timeout=30)
    assert started.returncode == 1 and cases[0][2] in started.stderr


# ---- inbound: TLS on the OTLP/HTTP listener ---------------------------------------------------

def sdk_export(proxy: ProxyProcess, certs: Certificates, *, client: str | None = None,
               headers: dict | None = None) -> tuple[bool, list[str]]:
    """Sends a trace of two spans with the OpenTelemetry SDK's OTLP/HTTP exporter over https://;
    returns (export succeeded, span ids)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = OTLPSpanExporter(
        endpoint=f"https://{proxy.host}:{proxy.port}/v1/traces", certificate_file=certs.path("ca.pem"),
        client_certificate_file=certs.path(f"{client}.pem") if client else None,
        client_key_file=certs.path(f"{client}.key") if client else None,
        headers=headers, timeout=10)
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "tls-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tls-test")
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span("child"):
            pass
    spans = memory.get_finished_spans()
    result = exporter.export(spans)
    exporter.shutdown()
    return result == SpanExportResult.SUCCESS, [f"{s.context.span_id:016x}" for s in spans]


def inbound_tls(certs: Certificates, **extra) -> dict:
    return {"cert_file": certs.path("server.pem"), "key_file": certs.path("server.key"), **extra}


def test_inbound_https_with_the_sdk_exporter(certs, fake_mlflow, tls_proxy):
    fake = fake_mlflow
    proxy = tls_proxy({"receiver": {"tls": inbound_tls(certs)}, "mlflow": {"experiment_id": "1"}},
                      mlflow_url=fake.url)
    wait_for_log(proxy, "OTLP/HTTP on 127.0.0.1:" + str(proxy.port) + " requires TLS")
    ok, ids = sdk_export(proxy, certs)
    assert ok
    assert sorted(fake.wait_for_spans(2)) == sorted(ids)
    # Keep-alive over TLS: several requests on one connection.
    with requests.Session() as session:
        for _ in range(3):
            request, more = numbered_request(2)
            answer = session.post(f"https://127.0.0.1:{proxy.port}/v1/traces",
                                  data=request.SerializeToString(), verify=certs.path("ca.pem"),
                                  headers={"Content-Type": "application/x-protobuf"}, timeout=10)
            assert answer.status_code == 200
            ids += more
    assert sorted(fake.wait_for_spans(8)) == sorted(ids)


def test_inbound_mutual_tls(certs, fake_mlflow, tls_proxy):
    fake = fake_mlflow
    proxy = tls_proxy({"receiver": {"tls": inbound_tls(certs, client_ca_file=certs.path("ca.pem"))},
                       "mlflow": {"experiment_id": "1"}}, mlflow_url=fake.url)
    ok, ids = sdk_export(proxy, certs, client="client")
    assert ok
    assert sorted(fake.wait_for_spans(2)) == sorted(ids)

    anonymous_ok, _ = sdk_export(proxy, certs)
    assert not anonymous_ok
    wait_for_log(proxy, "TLS handshake with 127.0.0.1:")
    assert "peer did not return a certificate" in proxy.log_text()
    assert scrape(proxy).value(REJECTS, reason="tls_handshake") >= 1
    ok, more = sdk_export(proxy, certs, client="client")  # still serving
    assert ok
    assert sorted(fake.wait_for_spans(4)) == sorted(ids + more)


def test_plaintext_and_stalled_clients_on_the_tls_port(certs, fake_mlflow, tls_proxy):
    fake = fake_mlflow
    proxy = tls_proxy({"receiver": {"tls": inbound_tls(certs, handshake_timeout="500ms")},
                       "mlflow": {"experiment_id": "1"}}, mlflow_url=fake.url)
    # A client that connects and says nothing holds its connection only until the timeout,
    # and nobody else waits for it.
    stalled = socket.create_connection((proxy.host, proxy.port))
    stalled.settimeout(5)
    started = time.monotonic()
    ok, ids = sdk_export(proxy, certs)
    assert ok
    assert stalled.recv(1) == b""
    assert time.monotonic() - started < 3
    stalled.close()

    # http:// to the TLS port: a plaintext 400 that says why, many times, logged a few times.
    for _ in range(40):
        request, _ = numbered_request(1)
        status, _ = post(proxy.host, proxy.port, request.SerializeToString(), timeout=5)
        assert status == 400
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as raw:
        raw.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        answer = raw.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 400") and "this port expects TLS" in answer
    metrics = scrape(proxy)
    assert metrics.value(REJECTS, reason="plaintext_on_tls") == 41
    assert metrics.value(REJECTS, reason="tls_handshake_timeout") == 1
    lines = [line for line in proxy.log_text().splitlines() if "TLS handshake with" in line]
    assert 2 <= len(lines) < 30, lines  # rate-limited: 42 failures
    assert "plaintext HTTP to this TLS port" in "\n".join(lines)
    ok, more = sdk_export(proxy, certs)
    assert ok
    assert sorted(fake.wait_for_spans(4)) == sorted(ids + more)
    assert proxy.running()


def test_bearer_token_on_http_and_https(certs, fake_mlflow, tls_proxy):
    fake = fake_mlflow
    token = "inbound-bearer-0123456789"
    for tls in (None, inbound_tls(certs)):
        receiver = {"auth": {"bearer_token": token}}
        if tls:
            receiver["tls"] = tls
        proxy = tls_proxy({"receiver": receiver, "mlflow": {"experiment_id": "1"}},
                          mlflow_url=fake.url)
        url = f"{'https' if tls else 'http'}://127.0.0.1:{proxy.port}/v1/traces"
        body = json.dumps({"resourceSpans": []})
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            answer = requests.post(url, data=body, verify=certs.path("ca.pem"), timeout=10,
                                   headers={"Content-Type": "application/json", **headers})
            assert answer.status_code == 401
            assert answer.headers["WWW-Authenticate"] == "Bearer"
            status = answer.json()
            assert status["code"] == 16  # UNAUTHENTICATED, as a google.rpc.Status
            assert "Authorization: Bearer <token>" in status["message"]
        if tls:
            ok, ids = sdk_export(proxy, certs, headers={"Authorization": f"Bearer {token}"})
            assert ok
        else:
            request, ids = numbered_request(2)
            status, _ = post(proxy.host, proxy.port, request.SerializeToString(),
                             headers={"Authorization": f"Bearer {token}"})
            assert status == 200
        wait_until(lambda: set(ids) <= set(fake.delivered_span_ids()), 20, what="the spans")
        assert token not in proxy.log_text()


# ---- secrets ----------------------------------------------------------------------------------

def test_secrets_stay_out_of_logs_check_config_and_the_admin_endpoint(
        certs, fakes, tls_proxy, proxy_binary, tmp_path):
    fake = fakes(ssl_context=certs.server_context(client_ca="ca.pem"))
    secrets = {"password": "pw-secret-31337", "token": "tok-secret-31337",
               "url_password": "url-secret-31337", "bearer": "inbound-secret-31337"}
    key_body = certs.read("client.key").decode().splitlines()[1]  # a line of the key itself
    env = {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": secrets["password"],
           "MLFLOW_TRACKING_TOKEN": secrets["token"]}
    url = f"https://bob:{secrets['url_password']}@127.0.0.1:{fake.port}"
    config = {"receiver": {"auth": {"bearer_token": secrets["bearer"]}, "tls": inbound_tls(certs)},
              "mlflow": {"url": url, "experiment_id": "1",
                         "tls": {"ca_file": certs.path("other-ca.pem"),
                                 "client_cert_file": certs.path("client.pem"),
                                 "client_key_file": certs.path("client.key")}},
              "log": {"level": "debug"}}
    proxy = tls_proxy(config, mlflow_url=None, env=env, expect_exit_code=1)
    ok, _ = sdk_export(proxy, certs, headers={"Authorization": f"Bearer {secrets['bearer']}"})
    assert ok
    sdk_export(proxy, certs, headers={"Authorization": "Bearer not-the-secret"})
    wait_for_log(proxy, "certificate verify failed")  # failing upstream: URLs in many lines
    _, ready_body = readiness(proxy)
    metrics = scrape(proxy).text
    proxy.stop()  # the spans MLflow never took are dead-lettered: exit 1
    shown = check_config(proxy_binary, config, tmp_path, env)
    assert shown.returncode == 0, shown.stderr
    basic = base64.b64encode(f"alice:{secrets['password']}".encode()).decode()
    for where, text in (("log", proxy.log_text()), ("--check-config", shown.stdout + shown.stderr),
                        ("/readyz", ready_body), ("/metrics", metrics)):
        for name, secret in (*secrets.items(), ("key", key_body), ("basic", basic)):
            assert secret not in text, f"{name} appears in {where}"
    assert "bob:<hidden>@127.0.0.1" in shown.stdout and "bob:<hidden>@127.0.0.1" in proxy.log_text()
    assert 'password: "<hidden>"' in shown.stdout and 'token: "<hidden>"' in shown.stdout
    assert f'client_key_file: "{certs.path("client.key")}"' in shown.stdout
