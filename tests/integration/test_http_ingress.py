"""The real binary against bad and good OTLP/HTTP input, with a fake MLflow behind it: every bad
request gets the right status and a specific message, and the daemon keeps serving afterwards."""
from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import threading
import time
import zlib

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse)

from support.admin import scrape
from support.fake_mlflow import FakeMlflow, ScriptedAnswer
from support.net import wait_until
from support.proxy_process import ProxyProcess

SANITIZED = os.environ.get("PROXY_SANITIZED") == "1"
IDLE_TIMEOUTS = "otlp_mlflow_proxy_receiver_idle_timeouts_total"


@pytest.fixture
def proxy(proxy_factory):
    return proxy_factory(experiment_name="integration")


_span_counter = [0]


def make_request(spans: int = 1, service: str = "agent") -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    attr = rs.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", service
    ss = rs.scope_spans.add()
    ss.scope.name = "ai.koog"
    for _ in range(spans):
        _span_counter[0] += 1
        n = _span_counter[0]
        span = ss.spans.add()
        span.trace_id = n.to_bytes(16, "big")
        span.span_id = n.to_bytes(8, "big")
        span.name = f"chat gpt-4o #{n}"
        span.start_time_unix_nano = 1_700_000_000_000_000_000
        span.end_time_unix_nano = 1_700_000_001_000_000_000
    return request


def post(proxy: ProxyProcess, body: bytes, headers: dict | None = None, path: str = "/v1/traces",
         method: str = "POST", conn: http.client.HTTPConnection | None = None):
    own = conn is None
    conn = conn or http.client.HTTPConnection(proxy.host, proxy.port, timeout=30)
    hdrs = {"Content-Type": "application/x-protobuf"}
    hdrs.update(headers or {})
    conn.request(method, path, body=body, headers=hdrs)
    response = conn.getresponse()
    data = response.read()
    if own:
        conn.close()
    return response, data


def status_message(data: bytes) -> str:
    status = Status()
    status.ParseFromString(data)
    return status.message


def assert_still_serving(proxy: ProxyProcess, fake: FakeMlflow):
    request = make_request(2)
    response, data = post(proxy, request.SerializeToString())
    assert response.status == 200, data
    wanted = {s.span_id.hex() for s in request.resource_spans[0].scope_spans[0].spans}
    fake.wait_for_spans(0)
    deadline = time.monotonic() + 20
    while not wanted <= set(fake.delivered_span_ids()):
        assert time.monotonic() < deadline, "valid spans sent after a bad request never arrived"
        time.sleep(0.05)


def test_valid_protobuf_export_is_acknowledged_and_forwarded(proxy, fake_mlflow):
    request = make_request(3)
    response, data = post(proxy, request.SerializeToString())
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/x-protobuf"
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(data)
    assert not parsed.HasField("partial_success")
    ids = fake_mlflow.wait_for_spans(3)
    assert sorted(ids) == sorted(s.span_id.hex() for s in request.resource_spans[0].scope_spans[0].spans)
    export = fake_mlflow.delivered()[0]
    assert export.experiment_id == fake_mlflow.experiments["integration"]
    assert export.headers["Content-Type"] == "application/x-protobuf"
    assert export.request.resource_spans[0].resource.attributes[0].value.string_value == "agent"


def test_requests_within_the_linger_travel_together_and_a_full_batch_goes_at_once(
        proxy_factory, fake_mlflow):
    # The exporter's worker is not woken for every request: it waits out the linger for a fuller
    # batch, and looks again only when a push fills one.
    proxy = proxy_factory({"mlflow": {"experiment_id": "1"},
                           "exporter": {"batch_linger": "3s", "max_batch_spans": 6,
                                        "concurrency": 1}})
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=30)
    started = time.monotonic()
    for _ in range(3):
        response, _ = post(proxy, make_request(1).SerializeToString(), conn=conn)
        assert response.status == 200
    fake_mlflow.wait_for_spans(3, timeout=15)
    first = fake_mlflow.delivered()
    assert len(first) == 1, "three requests inside the linger should make one batch"
    assert first[0].time - started >= 2.5, "the batch left before its linger ended"

    for _ in range(6):
        response, _ = post(proxy, make_request(1).SerializeToString(), conn=conn)
        assert response.status == 200
    filled = time.monotonic()
    fake_mlflow.wait_for_spans(9, timeout=15)
    second = fake_mlflow.delivered()[1:]
    assert [len(export.span_ids()) for export in second] == [6]
    assert second[0].time - filled < 2.0, "a full batch waited out the linger"
    conn.close()


def test_wrong_method_is_405_with_allow(proxy, fake_mlflow):
    response, data = post(proxy, b"", method="GET")
    assert response.status == 405
    assert response.getheader("Allow") == "POST"
    assert "method GET not allowed" in status_message(data)
    assert_still_serving(proxy, fake_mlflow)


def test_wrong_path_is_404(proxy, fake_mlflow):
    response, data = post(proxy, make_request().SerializeToString(), path="/v1/trace")
    assert response.status == 404
    assert "no such path /v1/trace" in status_message(data)
    assert_still_serving(proxy, fake_mlflow)


def test_wrong_content_type_is_415(proxy, fake_mlflow):
    response, data = post(proxy, b"hello", headers={"Content-Type": "text/plain"})
    assert response.status == 415
    assert 'unsupported Content-Type "text/plain"' in status_message(data)
    assert_still_serving(proxy, fake_mlflow)


def test_unknown_encoding_is_415(proxy, fake_mlflow):
    response, data = post(proxy, b"xx", headers={"Content-Encoding": "br"})
    assert response.status == 415
    assert 'unsupported Content-Encoding "br"' in status_message(data)
    assert_still_serving(proxy, fake_mlflow)


def test_garbage_protobuf_is_400(proxy, fake_mlflow):
    response, data = post(proxy, b"\xff\xfe\xfd garbage that is not protobuf")
    assert response.status == 400
    assert "not a valid protobuf ExportTraceServiceRequest" in status_message(data)
    assert_still_serving(proxy, fake_mlflow)


def test_truncated_gzip_is_400(proxy, fake_mlflow):
    body = gzip.compress(make_request(5).SerializeToString())
    response, data = post(proxy, body[: len(body) // 2], headers={"Content-Encoding": "gzip"})
    assert response.status == 400
    assert "gzip body is truncated" in status_message(data)
    assert_still_serving(proxy, fake_mlflow)


def test_gzip_and_deflate_bodies_are_accepted(proxy, fake_mlflow):
    request = make_request(2)
    response, _ = post(proxy, gzip.compress(request.SerializeToString()), headers={"Content-Encoding": "gzip"})
    assert response.status == 200
    response, _ = post(proxy, zlib.compress(make_request(2).SerializeToString()), headers={"Content-Encoding": "deflate"})
    assert response.status == 200
    fake_mlflow.wait_for_spans(4)


def test_gzip_bomb_is_413_without_allocating_it(proxy_factory, fake_mlflow):
    proxy = proxy_factory(config={"receiver": {"max_body_bytes": "8MiB"}})
    bomb = gzip.compress(b"\0" * (512 << 20), compresslevel=9)  # 512 MiB of zeros in ~500 KB
    response, data = post(proxy, bomb, headers={"Content-Encoding": "gzip"})
    assert response.status == 413
    assert "exceeds the limit of 8388608 bytes" in status_message(data)
    if not SANITIZED:
        with open(f"/proc/{proxy.proc.pid}/status") as f:
            peak_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
        assert peak_kib < 100 * 1024, f"peak RSS {peak_kib} KiB: the bomb was inflated past the limit"
    assert_still_serving(proxy, fake_mlflow)


def test_body_over_the_limit_is_413(proxy_factory, fake_mlflow):
    proxy = proxy_factory(config={"receiver": {"max_body_bytes": "1MiB"}})
    response, data = post(proxy, b"\0" * (2 << 20))
    assert response.status == 413
    assert "exceeds the limit of 1048576 bytes" in status_message(data)
    assert_still_serving(proxy, fake_mlflow)


def test_json_with_base64_ids_is_400_naming_the_field(proxy, fake_mlflow):
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "AAECAwQFBgcICQoLDA0ODw==", "spanId": "AAECAwQFBgc=", "name": "x"}]}]}]}
    response, data = post(proxy, json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert response.getheader("Content-Type") == "application/json"
    error = json.loads(data)
    assert error["code"] == 3
    assert "resourceSpans[0].scopeSpans[0].spans[0].traceId" in error["message"]
    assert "hex, not base64" in error["message"]
    assert_still_serving(proxy, fake_mlflow)


def test_json_export_is_answered_in_json_and_forwarded_with_hex_ids(proxy, fake_mlflow):
    body = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "json-agent"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "json span", "kind": 3, "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000001000000000",
            "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "9007199254740993"}}],
            "status": {"code": 2, "message": "boom"}}]}]}]}
    response, data = post(proxy, json.dumps(body).encode(), headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(data) == {}
    fake_mlflow.wait_for_spans(1)
    span = fake_mlflow.delivered()[0].request.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.span_id.hex() == "eee19b7ec3c1b174"
    assert span.kind == 3
    assert span.attributes[0].value.int_value == 9007199254740993
    assert span.status.code == 2 and span.status.message == "boom"


def test_empty_request_is_acknowledged_with_a_warning_and_not_forwarded(proxy, fake_mlflow):
    response, data = post(proxy, b"")
    assert response.status == 200
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(data)
    assert parsed.partial_success.error_message == "request contained no spans"
    assert_still_serving(proxy, fake_mlflow)
    assert all(e.request.resource_spans for e in fake_mlflow.exports), "an empty request went upstream"


def test_invalid_span_ids_are_rejected_by_partial_success(proxy, fake_mlflow):
    request = make_request(2)
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = b"\x01\x02"
    response, data = post(proxy, request.SerializeToString())
    assert response.status == 200
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(data)
    assert parsed.partial_success.rejected_spans == 1
    assert "traceId must be 16 bytes, got 2" in parsed.partial_success.error_message
    fake_mlflow.wait_for_spans(1)
    time.sleep(0.2)
    assert len(fake_mlflow.delivered_span_ids()) == 1


def test_header_over_the_limit_is_431(proxy, fake_mlflow):
    response, data = post(proxy, make_request().SerializeToString(), headers={"X-Big": "a" * 20000})
    assert response.status == 431
    assert_still_serving(proxy, fake_mlflow)


def test_a_client_that_trickles_bytes_is_cut_off(proxy_factory, fake_mlflow):
    proxy = proxy_factory(config={"receiver": {"read_timeout": "1s"}})
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = False
        try:
            while time.monotonic() - started < 8:
                sock.sendall(b"X-Slow: 1\r\n")
                time.sleep(0.2)
        except OSError:
            closed = True
        if not closed:
            sock.settimeout(3)
            closed = sock.recv(1) == b""
        assert closed, "a trickling client kept its connection past read_timeout"
        assert time.monotonic() - started < 5
    assert_still_serving(proxy, fake_mlflow)


def test_keep_alive_serves_many_requests_on_one_connection(proxy, fake_mlflow):
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=30)
    for _ in range(20):
        response, _ = post(proxy, make_request().SerializeToString(), conn=conn)
        assert response.status == 200
    conn.close()
    fake_mlflow.wait_for_spans(20)


def test_a_kept_connection_reuses_its_body_buffer_without_stale_bytes(proxy, fake_mlflow):
    """A connection keeps its body buffer between requests: a small body after a large one must
    be read as itself, not with the large one's tail (which would be a 400 or extra spans)."""
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=30)
    sent: list[str] = []
    for spans in (300, 1, 40, 1, 300, 2):
        request = make_request(spans)
        sent += [span.span_id.hex() for rs in request.resource_spans
                 for ss in rs.scope_spans for span in ss.spans]
        response, body = post(proxy, request.SerializeToString(), conn=conn)
        assert response.status == 200, body
    conn.close()
    assert sorted(fake_mlflow.wait_for_spans(len(sent))) == sorted(sent)
    time.sleep(0.5)
    assert sorted(fake_mlflow.delivered_span_ids()) == sorted(sent)


def test_success_answers_are_exact_http_on_a_kept_connection(proxy, fake_mlflow):
    """The plain 200 is written from constant bytes: check them raw, for protobuf and JSON, and
    that the connection serves the next request (pipelined too) after each."""
    request = make_request().SerializeToString()
    json_body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "name": "raw", "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]}).encode()

    def raw_post(content_type: str, body: bytes) -> bytes:
        return (f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    expected_protobuf = (b"HTTP/1.1 200 OK\r\nServer: otlp-mlflow-proxy\r\n"
                         b"Content-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n")
    expected_json = (b"HTTP/1.1 200 OK\r\nServer: otlp-mlflow-proxy\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as sock:
        # Two requests in one write: both answered, in order, on the same connection.
        sock.sendall(raw_post("application/x-protobuf", request) + raw_post("application/json", json_body))
        wanted = expected_protobuf + expected_json
        received = b""
        while len(received) < len(wanted):
            chunk = sock.recv(4096)
            assert chunk, f"connection closed after {received!r}"
            received += chunk
        assert received == wanted
        sock.sendall(raw_post("application/x-protobuf", request))
        received = b""
        while len(received) < len(expected_protobuf):
            chunk = sock.recv(4096)
            assert chunk
            received += chunk
        assert received == expected_protobuf
    fake_mlflow.wait_for_spans(3)


def test_connections_over_the_limit_are_refused_with_503(proxy_factory, fake_mlflow):
    proxy = proxy_factory(config={"receiver": {"max_connections": 2}})
    held = [http.client.HTTPConnection(proxy.host, proxy.port, timeout=10) for _ in range(2)]
    for conn in held:
        response, _ = post(proxy, make_request().SerializeToString(), conn=conn)
        assert response.status == 200
    response, data = post(proxy, make_request().SerializeToString())
    assert response.status == 503
    assert "too many connections" in status_message(data)
    for conn in held:
        conn.close()
    time.sleep(0.2)
    assert_still_serving(proxy, fake_mlflow)


# One I/O thread serves connections without strands; two or more give each connection a strand.
# Both, in memory and with the disk spool (whose commit resumes the connection on its executor).
@pytest.mark.parametrize("io_threads,durability", [(1, "memory"), (2, "memory"), (1, "disk"),
                                                   (3, "disk")])
def test_concurrent_clients_lose_no_span(proxy_factory, fake_mlflow, tmp_path, io_threads,
                                         durability):
    queue = {"durability": durability}
    if durability == "disk":
        queue["state_dir"] = str(tmp_path / "spool")
    proxy = proxy_factory({"mlflow": {"experiment_name": "integration"},
                           "receiver": {"io_threads": io_threads}, "queue": queue})
    wait_until(lambda: f"{io_threads} I/O thread" in proxy.log_text(), 10,
               what=f"the proxy to start {io_threads} I/O threads")
    sent: list[str] = []
    lock = threading.Lock()
    errors = []

    def client():
        conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=30)
        try:
            for _ in range(40):
                request = make_request(5)
                response, data = post(proxy, request.SerializeToString(), conn=conn)
                if response.status != 200:
                    errors.append((response.status, data))
                    continue
                with lock:
                    sent.extend(s.span_id.hex() for s in request.resource_spans[0].scope_spans[0].spans)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    fake_mlflow.wait_for_spans(len(sent), timeout=60)
    delivered = fake_mlflow.delivered_span_ids()
    assert sorted(delivered) == sorted(sent), "spans lost or duplicated"


def test_client_header_wins_and_names_are_created_once(proxy, fake_mlflow):
    response, _ = post(proxy, make_request().SerializeToString(), headers={"x-mlflow-experiment-id": "77"})
    assert response.status == 200
    response, _ = post(proxy, make_request().SerializeToString())
    assert response.status == 200
    fake_mlflow.wait_for_spans(2)
    experiments = sorted(e.experiment_id for e in fake_mlflow.delivered())
    assert experiments == sorted(["77", fake_mlflow.experiments["integration"]])
    assert list(fake_mlflow.experiments) == ["integration"]


def test_retryable_upstream_errors_are_retried_until_delivered(proxy, fake_mlflow):
    fake_mlflow.script = [ScriptedAnswer(503), ScriptedAnswer(429, headers={"Retry-After": "1"}),
                          ScriptedAnswer(502)]
    request = make_request(3)
    started = time.monotonic()
    response, _ = post(proxy, request.SerializeToString())
    assert response.status == 200
    fake_mlflow.wait_for_spans(3, timeout=30)
    assert time.monotonic() - started >= 1.0, "Retry-After: 1 was not honoured"
    assert [e.status for e in fake_mlflow.exports] == [503, 429, 502, 200]


def test_sigterm_drains_the_queue_then_exits_zero(proxy, fake_mlflow):
    fake_mlflow.script = [ScriptedAnswer(503)]
    for _ in range(5):
        response, _ = post(proxy, make_request(4).SerializeToString())
        assert response.status == 200
    assert proxy.stop(timeout=30) == 0
    assert len(fake_mlflow.delivered_span_ids()) == 20
    log = proxy.log_text()
    assert "received SIGTERM, draining" in log
    assert "delivered 20 spans" in log


# ---- limits (issue 9): each answered with a specific status and message, and the daemon goes on

def test_too_many_header_fields_is_431_with_a_clear_body(proxy_factory, fake_mlflow):
    proxy = proxy_factory(config={"receiver": {"max_header_count": 20}})
    headers = {f"X-Field-{i}": "1" for i in range(30)}
    response, data = post(proxy, make_request().SerializeToString(), headers=headers)
    assert response.status == 431
    assert response.getheader("Connection") == "close"
    assert "header fields; the limit is 20" in status_message(data)
    assert_still_serving(proxy, fake_mlflow)


def test_a_client_that_trickles_its_body_is_cut_off(proxy_factory, fake_mlflow):
    proxy = proxy_factory(config={"receiver": {"read_timeout": "1s"}})
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 100000\r\n\r\n")
        started = time.monotonic()
        closed = False
        try:
            while time.monotonic() - started < 8:
                sock.sendall(b"\0" * 10)
                time.sleep(0.2)
        except OSError:
            closed = True
        if not closed:
            sock.settimeout(3)
            closed = sock.recv(1) == b""
        assert closed, "a client trickling its body kept the connection past read_timeout"
        assert time.monotonic() - started < 5
    assert "request body not received within 1000 ms" in proxy.log_text()
    assert_still_serving(proxy, fake_mlflow)


def test_an_idle_keep_alive_connection_is_closed_after_idle_timeout(proxy_factory, fake_mlflow):
    proxy = proxy_factory(config={"receiver": {"idle_timeout": "1s"}})
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as sock:
        sock.settimeout(6)
        started = time.monotonic()
        assert sock.recv(1) == b"", "the proxy sent something to an idle connection"
        assert 0.8 < time.monotonic() - started < 5
    assert scrape(proxy).value(IDLE_TIMEOUTS) == 1
    # A connection that keeps sending requests is not idle, however long it lives: the idle
    # timer armed by its first wait fires while later waits are under way and is re-armed.
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
    for _ in range(6):
        response, _ = post(proxy, make_request().SerializeToString(), conn=conn)
        assert response.status == 200
        time.sleep(0.6)
    conn.close()
    assert scrape(proxy).value(IDLE_TIMEOUTS) == 1


def test_too_many_spans_in_one_request_is_413_and_nothing_is_forwarded(proxy_factory, fake_mlflow):
    proxy = proxy_factory(config={"receiver": {"max_spans_per_request": 10}})
    response, data = post(proxy, make_request(11).SerializeToString())
    assert response.status == 413
    assert status_message(data) == "request carries 11 spans; the limit is 10 per request: send smaller batches"
    response, _ = post(proxy, make_request(10).SerializeToString())
    assert response.status == 200
    fake_mlflow.wait_for_spans(10)
    time.sleep(0.3)
    assert len(fake_mlflow.delivered_span_ids()) == 10


def test_attributes_over_the_limit_are_dropped_and_counted_on_the_forwarded_span(proxy_factory, fake_mlflow):
    proxy = proxy_factory(config={"receiver": {"max_attributes_per_span": 3}})
    request = make_request(1)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    for i in range(10):
        kv = span.attributes.add()
        kv.key, kv.value.int_value = f"attr.{i}", i
    response, data = post(proxy, request.SerializeToString())
    assert response.status == 200
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(data)
    assert answer.partial_success.rejected_spans == 0
    assert "7 attributes over the limits dropped from 1 spans" in answer.partial_success.error_message
    fake_mlflow.wait_for_spans(1)
    forwarded = fake_mlflow.delivered()[0].request.resource_spans[0].scope_spans[0].spans[0]
    assert [kv.key for kv in forwarded.attributes][:3] == ["attr.0", "attr.1", "attr.2"]
    assert forwarded.dropped_attributes_count == 7


def test_a_body_expanding_past_the_decompression_ratio_is_413(proxy_factory, fake_mlflow):
    proxy = proxy_factory(config={"receiver": {"max_decompression_ratio": 50}})
    bomb = gzip.compress(b"\0" * (16 << 20), compresslevel=9)  # 16 MiB in ~16 KB: 1:1000
    response, data = post(proxy, bomb, headers={"Content-Encoding": "gzip"})
    assert response.status == 413
    assert "expands more than 50 times" in status_message(data)
    assert "decompression bomb" in proxy.log_text()
    assert_still_serving(proxy, fake_mlflow)


def test_invalid_utf8_in_a_string_field_is_400_without_libprotobuf_writing_to_stderr(proxy, fake_mlflow):
    # resource_spans { schema_url: "\xff\xfe" }: proto3 strings must be UTF-8. libprotobuf logs
    # each such field itself; that log goes through the proxy's logger at debug level.
    body = b"\x0a\x04" + b"\x1a\x02\xff\xfe"
    for _ in range(3):
        response, data = post(proxy, body)
        assert response.status == 400
        assert "not a valid protobuf" in status_message(data)
    assert "[libprotobuf" not in proxy.log_text()
    assert_still_serving(proxy, fake_mlflow)
