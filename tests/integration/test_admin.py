"""The admin endpoint: /healthz, /readyz transitions (MLflow down and back, queue over its
high-water mark and drained, shutting down) and /metrics with exact counter values after
known traffic."""
from __future__ import annotations

import base64
import gzip
import json
import signal
import threading
import time

import grpc
import pytest

from support.admin import admin_get, readiness, scrape, wait_ready
from support.delivery import (AGENT_PROMPT, agent_trace, delivered_span, numbered_request, post,
                              span_attribute)
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


def grpc_export(proxy: ProxyProcess, request) -> None:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
    assert proxy.grpc_target, "the binary advertises no --grpc-listen"
    with grpc.insecure_channel(proxy.grpc_target) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=10)


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
    # gRPC: one Export of 3 spans, one whose only span is invalid (INVALID_ARGUMENT).
    request, ids = numbered_request(3)
    grpc_export(proxy, request)
    sent += ids
    bad, _ = numbered_request(1)
    bad.resource_spans[0].scope_spans[0].spans[0].span_id = b"\0" * 8
    with pytest.raises(grpc.RpcError) as refused:
        grpc_export(proxy, bad)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fake_mlflow.wait_for_spans(len(sent))
    wait_until(lambda: scrape(proxy).value("otlp_mlflow_proxy_exported_spans_total") == 13, 10,
               what="the delivery counted")

    m = scrape(proxy)
    requests = "otlp_mlflow_proxy_receiver_requests_total"
    spans = "otlp_mlflow_proxy_receiver_spans_total"
    http, grpc_door = {"protocol": "http"}, {"protocol": "grpc"}
    assert m.value(requests, **http, encoding="protobuf", result="accepted") == 3
    assert m.value(requests, **http, encoding="json", result="accepted") == 1
    assert m.value(requests, **http, encoding="protobuf", result="rejected") == 1  # the bad body
    assert m.value(requests, **http, encoding="other",
                   result="rejected") == 2  # text/plain, and the GET without a Content-Type
    assert m.value(spans, **http, encoding="protobuf", result="accepted") == 6
    assert m.value(spans, **http, encoding="json", result="accepted") == 4
    assert m.value(spans, **http, encoding="protobuf", result="invalid") == 0
    assert m.value(requests, **grpc_door, encoding="protobuf", result="accepted") == 1
    assert m.value(requests, **grpc_door, encoding="protobuf", result="rejected") == 1
    assert m.value(spans, **grpc_door, encoding="protobuf", result="accepted") == 3
    assert m.value(spans, **grpc_door, encoding="protobuf", result="invalid") == 1
    assert m.value(spans, **grpc_door, encoding="protobuf", result="refused") == 0
    assert m.value("otlp_mlflow_proxy_receiver_rejects_total", reason="content_type") == 1
    assert m.value("otlp_mlflow_proxy_receiver_rejects_total", reason="bad_body") == 1
    assert m.value("otlp_mlflow_proxy_receiver_rejects_total", reason="invalid_spans") == 1
    assert m.value("otlp_mlflow_proxy_receiver_rejects_total", reason="not_found") == 1
    assert m.value("otlp_mlflow_proxy_receiver_rejects_total", reason="queue_full") == 0
    assert m.value("otlp_mlflow_proxy_receiver_compressed_requests_total") == 1
    assert m.value("otlp_mlflow_proxy_routed_spans_total", route="default", experiment="1") == 13
    assert m.value("otlp_mlflow_proxy_exported_spans_total") == 13
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


def test_normalization_and_trace_preview_counters_after_known_traffic(fake_mlflow, start):
    """Two agent traces: one whose root arrives before its invoke_agent (held, then filled when
    the invoke_agent arrives, long before its 5 s hold ends), one whose invoke_agent never comes
    (held 200 ms, then exported unfilled). Every normalize and preview counter is exact."""
    proxy = start(fake_mlflow.url, {
        "mlflow": {"experiment_id": "1"},
        "exporter": {"batch_linger": "0ms"},
        "routes": [{"name": "koog", "match": {"resource": {"service.name": "koog"}},
                    "experiment_id": "1", "policy": "verbose",
                    "normalize": {"preview_hold": "5s"}}],
        "default_route": {"policy": "verbose", "normalize": {"preview_hold": "200ms"}},
    })
    root_first, rest, root_id = agent_trace("koog")
    assert post(proxy.host, proxy.port, root_first.SerializeToString())[0] == 200
    wait_until(lambda: scrape(proxy).value("otlp_mlflow_proxy_preview_holds_total") == 1, 10,
               what="the root held")
    assert scrape(proxy).value("otlp_mlflow_proxy_queue_held_items") == 1
    rest_posted = time.monotonic()
    assert post(proxy.host, proxy.port, rest.SerializeToString())[0] == 200
    root, arrived = delivered_span(fake_mlflow, root_id)
    assert arrived - rest_posted < 4.0, "the root waited for its hold instead of its invoke_agent"
    inputs, outputs = span_attribute(root, "mlflow.spanInputs"), span_attribute(root, "mlflow.spanOutputs")
    assert inputs is not None and outputs is not None, root
    assert AGENT_PROMPT.encode() in inputs.SerializeToString()

    lonely_root, _, lonely_id = agent_trace("other")
    posted = time.monotonic()
    assert post(proxy.host, proxy.port, lonely_root.SerializeToString())[0] == 200
    lonely, arrived = delivered_span(fake_mlflow, lonely_id)
    assert arrived - posted >= 0.2, "exported before its hold ended"
    assert arrived - posted < 5.0
    assert span_attribute(lonely, "mlflow.spanInputs") is None
    fake_mlflow.wait_for_spans(7)

    m = scrape(proxy)
    assert m.value("otlp_mlflow_proxy_normalize_spans_total") == 7
    changes = "otlp_mlflow_proxy_normalize_changes_total"
    assert m.value(changes, rule="resource_attribute") == 7  # service.name on every span
    assert m.value(changes, rule="scope") == 7
    assert m.value(changes, rule="span_kind") == 0  # the spans have no kind
    assert m.value(changes, rule="span_type") == 4
    assert m.value(changes, rule="inputs") == 1  # the __start__ node
    assert m.value(changes, rule="outputs") == 1  # the __finish__ node
    assert m.value(changes, rule="session") == 1  # invoke_agent's gen_ai.conversation.id
    assert m.value(changes, rule="user") == 1  # the LLM call's enduser.id
    assert m.value(changes, rule="token_count") == 1
    assert m.value(changes, rule="preview") == 0  # neither root was filled at once
    typed = "otlp_mlflow_proxy_normalize_typed_spans_total"
    assert m.value(typed, rule="koog_graph", type="CHAIN") == 3  # strategy and two nodes
    assert m.value(typed, rule="model", type="LLM") == 1
    assert m.value(typed, rule="agent_name", type="AGENT") == 0  # MLflow types agents itself
    assert m.value("otlp_mlflow_proxy_preview_holds_total") == 2
    assert m.value("otlp_mlflow_proxy_preview_hold_releases_total", result="filled") == 1
    assert m.value("otlp_mlflow_proxy_preview_hold_releases_total", result="unfilled") == 1
    assert m.value("otlp_mlflow_proxy_preview_cache_stored_total") == 1
    assert m.value("otlp_mlflow_proxy_preview_cache_lookups_total", result="hit") == 1
    assert m.value("otlp_mlflow_proxy_preview_cache_lookups_total", result="miss") == 1
    for reason in ("size", "ttl", "oversize"):
        assert m.value("otlp_mlflow_proxy_preview_cache_evictions_total", reason=reason) == 0
    assert m.value("otlp_mlflow_proxy_preview_cache_entries") == 0
    assert m.value("otlp_mlflow_proxy_preview_cache_bytes") == 0
    assert m.value("otlp_mlflow_proxy_preview_cache_max_bytes") == 16 * 1024 * 1024
    assert m.value("otlp_mlflow_proxy_queue_held_items") == 0


def test_preview_cache_evictions_are_counted_by_reason(fake_mlflow, start):
    """A cache with room for one trace and a one-second TTL: the second trace's invoke_agent
    evicts the first (size); the third expires (ttl)."""
    proxy = start(fake_mlflow.url, {"mlflow": {"experiment_id": "1"},
                                    "default_route": {"policy": "verbose"},
                                    "preview_cache": {"max_bytes": "400B", "ttl": "1s"}})
    for _ in range(2):
        _, rest, _ = agent_trace("koog")
        assert post(proxy.host, proxy.port, rest.SerializeToString())[0] == 200
    m = scrape(proxy)
    assert m.value("otlp_mlflow_proxy_preview_cache_stored_total") == 2
    assert m.value("otlp_mlflow_proxy_preview_cache_evictions_total", reason="size") == 1
    assert m.value("otlp_mlflow_proxy_preview_cache_entries") == 1
    time.sleep(1.1)
    _, rest, _ = agent_trace("koog")  # its offer expires the old entry first
    assert post(proxy.host, proxy.port, rest.SerializeToString())[0] == 200
    m = scrape(proxy)
    assert m.value("otlp_mlflow_proxy_preview_cache_evictions_total", reason="ttl") == 1
    assert m.value("otlp_mlflow_proxy_preview_cache_evictions_total", reason="size") == 1
    assert m.value("otlp_mlflow_proxy_preview_cache_entries") == 1


def test_a_held_root_is_delivered_at_shutdown_without_waiting_out_its_hold(fake_mlflow, start):
    proxy = start(fake_mlflow.url, {"mlflow": {"experiment_id": "1"},
                                    "exporter": {"batch_linger": "0ms"},
                                    "default_route": {"normalize": {"preview_hold": "10s"}}})
    root_request, _, root_id = agent_trace("koog")
    assert post(proxy.host, proxy.port, root_request.SerializeToString())[0] == 200
    assert scrape(proxy).value("otlp_mlflow_proxy_queue_held_items") == 1
    stopping = time.monotonic()
    assert proxy.stop() == 0
    assert time.monotonic() - stopping < 8, "the drain waited out the hold"
    delivered_span(fake_mlflow, root_id, timeout=1)
    assert "drained: every acknowledged span was delivered" in proxy.log_text()


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


def _closed_unanswered(host: str, port: int) -> bool:
    """Connects and sends a request: True when the server closes the connection without a word."""
    import socket
    with socket.create_connection((host, port), timeout=5) as conn:
        try:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            return conn.recv(1024) == b""
        except ConnectionResetError:
            return True


def test_admin_caps_connections_and_times_out_idle_ones(fake_mlflow, start):
    import socket
    proxy = start(fake_mlflow.url, {"admin": {"max_connections": 2},
                                    "receiver": {"idle_timeout": "1s"}}, experiment_id="1")
    holders = [socket.create_connection((proxy.host, proxy.admin_port)) for _ in range(2)]
    try:
        time.sleep(0.2)  # both accepted
        assert _closed_unanswered(proxy.host, proxy.admin_port)
        assert "admin: refusing a connection: 2 open (admin.max_connections)" in proxy.log_text()
        # receiver.idle_timeout applies to the admin listener too: the idle holders are closed.
        for holder in holders:
            holder.settimeout(5)
            assert holder.recv(1) == b""
    finally:
        for holder in holders:
            holder.close()
    wait_until(lambda: admin_get(proxy.host, proxy.admin_port, "/healthz")[0] == 200, timeout=5)
