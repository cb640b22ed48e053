"""The admin endpoint: /healthz, /readyz transitions (MLflow down and back, queue over its
high-water mark and drained, shutting down) and /metrics with exact counter values after
known traffic."""
from __future__ import annotations

import base64
import gzip
import json
import signal
import threading

import pytest

from support.admin import admin_get, readiness, scrape, wait_ready
from support.delivery import numbered_request, post
from support.fake_mlflow import FakeMlflow
from support.net import free_port, port_accepts, wait_until
from support.proxy_process import ProxyProcess


@pytest.fixture
def fake_mlflow():
    fake = FakeMlflow().start()
    yield fake
    fake.accepting.set()
    fake.stop()


@pytest.fixture
def start(tmp_path, proxy_binary):
    started: list[ProxyProcess] = []

    def start_proxy(mlflow_url: str, config: dict | None = None, **kwargs) -> ProxyProcess:
        name = f"proxy{len(started)}"
        path = tmp_path / f"{name}.yaml"
        path.write_text(json.dumps(config or {}))
        proxy = ProxyProcess(tmp_path, binary=proxy_binary, mlflow_url=mlflow_url, config=path,
                             name=name, **kwargs)
        started.append(proxy)
        proxy.start()
        assert proxy.admin_port, "the binary does not advertise --admin-listen"
        return proxy

    yield start_proxy
    for proxy in started:
        if proxy.running():
            proxy.kill()


FAST_PROBE = {"probe_interval": "200ms"}


def to_otlp_json(request) -> dict:
    """OTLP-JSON: protobuf's JSON mapping with trace and span ids in hex instead of base64."""
    from google.protobuf.json_format import MessageToDict
    body = MessageToDict(request)
    for rs in body["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return body


def test_healthz_and_readyz_once_mlflow_answers(fake_mlflow, start):
    proxy = start(fake_mlflow.url, {"mlflow": {"experiment_id": "1"}, "admin": FAST_PROBE})
    status, body, _ = admin_get(proxy.host, proxy.admin_port, "/healthz")
    assert (status, body) == (200, "ok\n")
    assert wait_ready(proxy, True) == "ready\n"
    status, _, headers = admin_get(proxy.host, proxy.admin_port, "/nope")
    assert status == 404


def test_metrics_count_known_traffic_exactly(fake_mlflow, start):
    proxy = start(fake_mlflow.url, {"mlflow": {"experiment_id": "1"},
                                    "exporter": {"batch_linger": "0ms"}})
    sent = []
    for _ in range(3):  # 3 protobuf requests, 2 spans each
        request, ids = numbered_request(2)
        assert post(proxy.host, proxy.port, request.SerializeToString())[0] == 200
        sent += ids
    request, ids = numbered_request(4)  # 1 gzip'd JSON request, 4 spans
    body = gzip.compress(json.dumps(to_otlp_json(request)).encode())
    status, _ = post(proxy.host, proxy.port, body,
                     headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert status == 200
    sent += ids
    # Refused: a 415 (text/plain), a 400 (undecodable protobuf), a 404.
    assert post(proxy.host, proxy.port, b"x", headers={"Content-Type": "text/plain"})[0] == 415
    assert post(proxy.host, proxy.port, b"\xff\xff\xff")[0] == 400
    status, _, _ = admin_get(proxy.host, proxy.port, "/v1/nothing")
    assert status == 404
    fake_mlflow.wait_for_spans(len(sent))
    wait_until(lambda: scrape(proxy).value("otlp_mlflow_proxy_exported_spans_total") == 10, 10,
               what="the delivery counted")

    m = scrape(proxy)
    http = {}  # receiver samples carry no protocol label (HTTP and gRPC share the counters)
    assert m.value("otlp_mlflow_proxy_receiver_requests_total", **http, encoding="protobuf",
                   result="accepted") == 3
    assert m.value("otlp_mlflow_proxy_receiver_requests_total", **http, encoding="json",
                   result="accepted") == 1
    assert m.value("otlp_mlflow_proxy_receiver_requests_total", **http, encoding="protobuf",
                   result="rejected") == 1  # the bad body
    assert m.value("otlp_mlflow_proxy_receiver_requests_total", **http, encoding="other",
                   result="rejected") == 2  # text/plain, and the GET without a Content-Type
    assert m.value("otlp_mlflow_proxy_receiver_spans_total", **http, encoding="protobuf",
                   result="accepted") == 6
    assert m.value("otlp_mlflow_proxy_receiver_spans_total", **http, encoding="json",
                   result="accepted") == 4
    assert m.value("otlp_mlflow_proxy_receiver_rejects_total", **http, reason="content_type") == 1
    assert m.value("otlp_mlflow_proxy_receiver_rejects_total", **http, reason="bad_body") == 1
    assert m.value("otlp_mlflow_proxy_receiver_rejects_total", **http, reason="not_found") == 1
    assert m.value("otlp_mlflow_proxy_receiver_rejects_total", **http, reason="queue_full") == 0
    assert m.value("otlp_mlflow_proxy_receiver_compressed_requests_total", **http) == 1
    assert m.value("otlp_mlflow_proxy_routed_spans_total", route="default", experiment="1") == 10
    assert m.value("otlp_mlflow_proxy_exported_spans_total") == 10
    delivered_requests = len(fake_mlflow.delivered())
    assert m.value("otlp_mlflow_proxy_upstream_requests_total", status="200") == delivered_requests
    assert m.value("otlp_mlflow_proxy_upstream_requests_total", status="error") == 0
    assert m.value("otlp_mlflow_proxy_upstream_request_duration_seconds_count") == delivered_requests
    assert m.value("otlp_mlflow_proxy_upstream_request_duration_seconds_bucket",
                   le="+Inf") == delivered_requests
    assert m.value("otlp_mlflow_proxy_export_retries_total") == 0
    assert m.value("otlp_mlflow_proxy_dead_lettered_spans_total") == 0
    assert m.value("otlp_mlflow_proxy_queue_bytes") == 0
    assert m.value("otlp_mlflow_proxy_queue_spans") == 0
    assert m.value("otlp_mlflow_proxy_upstream_up") == 1
    assert m.value("otlp_mlflow_proxy_ready") == 1
    assert m.types["otlp_mlflow_proxy_upstream_request_duration_seconds"] == "histogram"
    build = [labels for (name, labels) in m.samples if name == "otlp_mlflow_proxy_build_info"]
    assert len(build) == 1 and dict(build[0])["version"]


def test_policy_actions_are_counted_by_mode(fake_mlflow, start):
    proxy = start(fake_mlflow.url, {"mlflow": {"experiment_id": "1"},
                                    "default_route": {"policy": "mask"}})
    request, ids = numbered_request(3)
    for span in request.resource_spans[0].scope_spans[0].spans:
        attribute = span.attributes.add()
        attribute.key, attribute.value.string_value = "gen_ai.input.messages", "my secret prompt"
    assert post(proxy.host, proxy.port, request.SerializeToString())[0] == 200
    fake_mlflow.wait_for_spans(3)
    m = scrape(proxy)
    assert m.value("otlp_mlflow_proxy_policy_actions_total", mode="mask", family="genai") == 3
    assert m.value("otlp_mlflow_proxy_policy_spans_total") == 3


def test_not_ready_while_mlflow_is_down_with_the_reason_then_ready(start):
    port = free_port()
    proxy = start(f"http://127.0.0.1:{port}", {"mlflow": {"experiment_id": "1"},
                                               "admin": FAST_PROBE})
    body = wait_ready(proxy, False, reason="unreachable")
    assert body.startswith("not ready\n")
    assert f"MLflow at http://127.0.0.1:{port} is unreachable (connect: Connection refused)" in body
    # Spans are still taken (that is what the queue is for) while /readyz says why not ready.
    request, ids = numbered_request(2)
    assert post(proxy.host, proxy.port, request.SerializeToString())[0] == 200
    wait_until(lambda: scrape(proxy).value("otlp_mlflow_proxy_upstream_requests_total",
                                           status="error") >= 1, 10, what="a failed export")
    assert scrape(proxy).value("otlp_mlflow_proxy_upstream_up") == 0

    fake = FakeMlflow(port=port).start()
    try:
        wait_ready(proxy, True, timeout=20)
        fake.wait_for_spans(2)
        m = scrape(proxy)
        assert m.value("otlp_mlflow_proxy_export_retries_total") >= 1
        assert m.value("otlp_mlflow_proxy_exported_spans_total") == 2
        assert m.value("otlp_mlflow_proxy_upstream_up") == 1
    finally:
        fake.stop()


def test_not_ready_while_the_queue_is_over_its_high_water_mark(fake_mlflow, start):
    proxy = start(fake_mlflow.url, {"mlflow": {"experiment_id": "1"},
                                    "queue": {"max_bytes": "64KiB"},
                                    "exporter": {"batch_linger": "0ms"},
                                    "admin": {"queue_high_water": 0.5, **FAST_PROBE}})
    wait_ready(proxy, True)
    fake_mlflow.accepting.clear()  # MLflow stalls: spans stay in the queue
    held = 0
    while held <= 32 * 1024:
        request, _ = numbered_request(1, payload_bytes=4000)
        assert post(proxy.host, proxy.port, request.SerializeToString())[0] == 200
        held += request.ByteSize()
    body = wait_ready(proxy, False, reason="the queue holds")
    assert "of 65536 bytes, above the high-water mark of 32768 (admin.queue_high_water)" in body
    assert scrape(proxy).value("otlp_mlflow_proxy_queue_bytes") > 32768
    assert scrape(proxy).value("otlp_mlflow_proxy_ready") == 0
    fake_mlflow.accepting.set()
    wait_ready(proxy, True)
    wait_until(lambda: scrape(proxy).value("otlp_mlflow_proxy_queue_bytes") == 0, 15,
               what="the queue drained")


def test_not_ready_while_draining(fake_mlflow, start):
    proxy = start(fake_mlflow.url, {"mlflow": {"experiment_id": "1"},
                                    "exporter": {"batch_linger": "0ms"},
                                    "shutdown_timeout": "10s", "admin": FAST_PROBE})
    wait_ready(proxy, True)
    fake_mlflow.accepting.clear()
    request, _ = numbered_request(2)
    assert post(proxy.host, proxy.port, request.SerializeToString())[0] == 200
    proxy.signal(signal.SIGTERM)
    wait_ready(proxy, False, reason="shutting down")
    fake_mlflow.accepting.set()
    assert proxy.stop() == 0


def test_admin_listener_can_be_turned_off(fake_mlflow, tmp_path, proxy_binary):
    admin_port = free_port()
    proxy = ProxyProcess(tmp_path, binary=proxy_binary, mlflow_url=fake_mlflow.url,
                         experiment_id="1", extra_args=["--admin-listen", "off"])
    with proxy:
        assert not port_accepts("127.0.0.1", admin_port)
        assert "admin endpoint" not in proxy.log_text()


def test_admin_port_in_use_fails_start_with_a_clear_message(fake_mlflow, tmp_path, proxy_binary):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proxy = ProxyProcess(tmp_path, binary=proxy_binary, mlflow_url=fake_mlflow.url,
                             experiment_id="1", extra_args=["--admin-listen", f"127.0.0.1:{port}"],
                             startup_timeout=5)
        with pytest.raises(Exception) as failure:
            proxy.start()
        assert f"cannot listen on 127.0.0.1:{port} (admin)" in str(failure.value)
