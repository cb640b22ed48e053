"""The real binary's OTLP/gRPC receiver against a fake MLflow: every status of the OTLP/gRPC
mapping (OK with partial_success, INVALID_ARGUMENT, RESOURCE_EXHAUSTED and UNAVAILABLE with
google.rpc.RetryInfo, UNAUTHENTICATED), gzip, the message size limit, the experiment metadata,
TLS and mutual TLS, backpressure with the SDK's retrying gRPC exporter, and SIGTERM."""
from __future__ import annotations

import gzip
import json
import signal
import socket
import subprocess
import time

import grpc
import pytest
from google.rpc import status_pb2
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse)

from support.delivery import numbered_request, post
from support.fake_mlflow import ScriptedAnswer
from support.net import free_port, wait_until
from support.otel_clients import send_span_per_export
from support.proxy_process import ProxyProcess
from support.tls_certs import make_certificates

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
FAST_RETRY = {"initial_backoff": "50ms", "max_backoff": "500ms"}


@pytest.fixture
def grpc_proxy(proxy_factory):
    """proxy_factory with experiment 1 by default and the gRPC listener required."""
    def start(config: dict | None = None, **kwargs) -> ProxyProcess:
        config = config or {}
        config.setdefault("mlflow", {}).setdefault("experiment_id", "1")
        proxy = proxy_factory(config, **kwargs)
        if "--grpc-listen" not in kwargs.get("extra_args", []):
            assert proxy.grpc_target, "the binary advertises no --grpc-listen"
        return proxy
    return start


def stub(target: str, credentials: grpc.ChannelCredentials | None = None, **options):
    opts = [("grpc.max_send_message_length", 256 * 1024 * 1024)] + list(options.items())
    channel = (grpc.secure_channel(target, credentials, options=opts) if credentials
               else grpc.insecure_channel(target, options=opts))
    return channel, trace_service_pb2_grpc.TraceServiceStub(channel)


def export(target: str, request: ExportTraceServiceRequest, *, metadata=(), compression=None,
           timeout: float = 30, credentials=None) -> ExportTraceServiceResponse:
    channel, client = stub(target, credentials)
    with channel:
        return client.Export(request, metadata=list(metadata), compression=compression,
                             timeout=timeout)


def export_error(target: str, request, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        export(target, request, **kwargs)
    return caught.value


def retry_delay(error: grpc.RpcError) -> tuple[float, float]:
    """The RetryInfo delay from grpc-status-details-bin and from the google.rpc.retryinfo-bin
    trailer (the one the Python SDK reads), in seconds."""
    trailers = dict(error.trailing_metadata() or ())
    status = status_pb2.Status()
    status.ParseFromString(trailers["grpc-status-details-bin"])
    assert status.code == error.code().value[0] and status.message == error.details()
    from_details = RetryInfo()
    assert status.details and status.details[0].Unpack(from_details)
    from_trailer = RetryInfo()
    from_trailer.ParseFromString(trailers["google.rpc.retryinfo-bin"])
    return (from_details.retry_delay.ToTimedelta().total_seconds(),
            from_trailer.retry_delay.ToTimedelta().total_seconds())


def test_export_is_ok_and_forwarded(grpc_proxy, fake_mlflow):
    proxy = grpc_proxy()
    request, ids = numbered_request(3)
    response = export(proxy.grpc_target, request)
    assert not response.HasField("partial_success")
    assert sorted(fake_mlflow.wait_for_spans(3)) == sorted(ids)
    assert fake_mlflow.delivered()[0].experiment_id == "1"


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate],
                         ids=["gzip", "deflate"])
def test_compressed_messages_are_accepted(grpc_proxy, fake_mlflow, compression):
    proxy = grpc_proxy()
    request, ids = numbered_request(4, payload_bytes=20_000)
    export(proxy.grpc_target, request, compression=compression)
    assert sorted(fake_mlflow.wait_for_spans(4)) == sorted(ids)


def test_experiment_metadata_routes_like_the_http_header(grpc_proxy, fake_mlflow):
    proxy = grpc_proxy()
    request, ids = numbered_request(2)
    export(proxy.grpc_target, request, metadata=[("x-mlflow-experiment-id", "42")])
    fake_mlflow.wait_for_spans(2)
    assert [e.experiment_id for e in fake_mlflow.delivered()] == ["42"]

    error = export_error(proxy.grpc_target, numbered_request(1)[0],
                         metadata=[("x-mlflow-experiment-id", "not-an-id")])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "x-mlflow-experiment-id" in error.details()


def test_invalid_spans_are_reported_in_partial_success(grpc_proxy, fake_mlflow):
    proxy = grpc_proxy()
    request, ids = numbered_request(3)
    request.resource_spans[0].scope_spans[0].spans[2].span_id = b"\x00" * 8
    response = export(proxy.grpc_target, request)
    assert response.partial_success.rejected_spans == 1
    assert "span" in response.partial_success.error_message
    fake_mlflow.wait_for_spans(2)
    assert sorted(fake_mlflow.delivered_span_ids()) == sorted(ids[:2])


def test_empty_request_is_ok_with_a_warning(grpc_proxy, fake_mlflow):
    proxy = grpc_proxy()
    response = export(proxy.grpc_target, ExportTraceServiceRequest())
    assert response.partial_success.rejected_spans == 0
    assert response.partial_success.error_message == "request contained no spans"


def test_bad_protobuf_is_invalid_argument_and_the_proxy_keeps_serving(grpc_proxy, fake_mlflow):
    proxy = grpc_proxy()
    with grpc.insecure_channel(proxy.grpc_target) as channel:
        raw = channel.unary_unary(EXPORT_METHOD)  # bytes in, bytes out: no serializer
        with pytest.raises(grpc.RpcError) as caught:
            raw(b"\x0a\xff\xff\xff\xff\x0f garbage", timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details(), "INVALID_ARGUMENT must say what is wrong"
    request, ids = numbered_request(2)
    export(proxy.grpc_target, request)
    assert sorted(fake_mlflow.wait_for_spans(2)) == sorted(ids)


def test_all_spans_invalid_is_invalid_argument(grpc_proxy, fake_mlflow):
    proxy = grpc_proxy()
    request, _ = numbered_request(2)
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.trace_id = b"\x00" * 16
    error = export_error(proxy.grpc_target, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "all 2 spans are invalid" in error.details()


def test_message_over_the_limit_is_resource_exhausted(grpc_proxy, fake_mlflow):
    proxy = grpc_proxy({"receiver": {"max_body_bytes": "64KiB"}})
    big, _ = numbered_request(1, payload_bytes=100_000)
    error = export_error(proxy.grpc_target, big)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # A small gzip message that inflates past the limit is refused too (no gzip bomb).
    bomb, _ = numbered_request(1, payload_bytes=2_000_000)
    assert len(gzip.compress(bomb.SerializeToString())) < 64 * 1024
    error = export_error(proxy.grpc_target, bomb, compression=grpc.Compression.Gzip)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    request, ids = numbered_request(2)
    export(proxy.grpc_target, request)
    assert sorted(fake_mlflow.wait_for_spans(2)) == sorted(ids)


def fill_queue(proxy: ProxyProcess) -> tuple[list[str], grpc.RpcError]:
    """Sends until the proxy refuses; returns the acknowledged span ids and the refusal."""
    acknowledged = []
    channel, client = stub(proxy.grpc_target)
    with channel:
        for _ in range(60):
            request, ids = numbered_request(3, payload_bytes=1500)
            try:
                client.Export(request, timeout=10)
            except grpc.RpcError as error:
                return acknowledged, error
            acknowledged += ids
    pytest.fail("the queue never filled up")


def test_a_call_past_its_deadline_is_answered_deadline_exceeded_and_not_enqueued(grpc_proxy,
                                                                                fake_mlflow):
    proxy = grpc_proxy()
    channel, client = stub(proxy.grpc_target)
    with channel:
        first, first_ids = numbered_request(2)
        client.Export(first, timeout=10)  # connected: the deadline below is spent on the message
        # About 10 MB cannot reach the proxy within 5 ms, so the deadline passes on the way in.
        late, late_ids = numbered_request(200, payload_bytes=50_000)
        with pytest.raises(grpc.RpcError) as caught:
            client.Export(late, timeout=0.005)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        after, after_ids = numbered_request(2)
        client.Export(after, timeout=10)  # the proxy keeps serving on the same connection
    fake_mlflow.wait_for_spans(4)
    time.sleep(0.5)  # a late request that was enqueued after all would be exported by now
    delivered = set(fake_mlflow.delivered_span_ids())
    assert set(first_ids) | set(after_ids) <= delivered
    assert not delivered & set(late_ids), "a call past its deadline was enqueued"


def test_queue_full_is_resource_exhausted_with_retry_info_and_the_sdk_delivers_everything(
        grpc_proxy, fake_mlflow):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    # MLflow unavailable for a few seconds: the small queue fills up.
    fake_mlflow.script = [ScriptedAnswer(503, "{}", {"Retry-After": "1"}) for _ in range(3)]
    proxy = grpc_proxy({"queue": {"max_bytes": "16KiB", "retry_after": "1s"},
                        "exporter": {"retry": FAST_RETRY}})
    raw_ids, refusal = fill_queue(proxy)
    assert refusal.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refusal
    assert "queue is full" in refusal.details()
    assert retry_delay(refusal) == (1.0, 1.0)

    sdk_ids, results = send_span_per_export(
        OTLPSpanExporter(endpoint=proxy.grpc_target, insecure=True, timeout=60),
        tracer_name="grpc-backpressure-test")
    assert results == ["SUCCESS"] * 24, results
    delivered = fake_mlflow.wait_for_spans(len(raw_ids) + len(sdk_ids), timeout=30)
    assert set(raw_ids) | set(sdk_ids) <= set(delivered)


def test_draining_proxy_answers_unavailable(grpc_proxy, fake_mlflow):
    # MLflow down: the backlog keeps the proxy draining for a while after SIGTERM.
    fake_mlflow.script = [ScriptedAnswer(503, "{}") for _ in range(1000)]
    proxy = grpc_proxy({"shutdown_timeout": "3s", "exporter": {"retry": FAST_RETRY}},
                       expect_exit_code=None)
    channel, client = stub(proxy.grpc_target)
    with channel:
        client.Export(numbered_request(2)[0], timeout=10)  # connected, one request queued
        proxy.signal(signal.SIGTERM)
        wait_until(lambda: "received SIGTERM, draining" in proxy.log_text(), 10,
                   what="the proxy to start draining")
        with pytest.raises(grpc.RpcError) as caught:
            client.Export(numbered_request(1)[0], timeout=10)
    # The handler's UNAVAILABLE (with RetryInfo) while the listener shuts down, or gRPC's own
    # CANCELLED (a call racing the shutdown) or UNAVAILABLE (listener closed): all three are
    # retryable for OTLP clients (OTLP spec, "Failures"), so nothing acknowledged is lost.
    assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    if caught.value.code() == grpc.StatusCode.UNAVAILABLE and "shutting down" in (
            caught.value.details() or ""):
        assert retry_delay(caught.value) == (2.0, 2.0)
    proxy.wait(30)


def test_sigterm_finishes_in_flight_calls_then_drains(grpc_proxy, fake_mlflow):
    proxy = grpc_proxy({"exporter": {"retry": FAST_RETRY}})
    sent = []
    channel, client = stub(proxy.grpc_target)
    with channel:
        for _ in range(20):
            request, ids = numbered_request(3)
            client.Export(request, timeout=10)
            sent += ids
    assert proxy.stop() == 0
    assert set(sent) <= set(fake_mlflow.delivered_span_ids())


def test_bearer_token_is_required_on_both_doors_and_never_shown(grpc_proxy, fake_mlflow,
                                                               tmp_path, proxy_binary):
    token = "s3cr3t-token-value"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    proxy = grpc_proxy({"receiver": {"auth": {"bearer_token_file": str(token_file)}}})
    request, ids = numbered_request(2)

    for metadata in ([], [("authorization", "Bearer wrong")], [("authorization", token)]):
        error = export_error(proxy.grpc_target, request, metadata=metadata)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "authorization" in error.details()
    export(proxy.grpc_target, request, metadata=[("authorization", f"Bearer {token}")])

    status, headers = post(proxy.host, proxy.port, numbered_request(1)[0].SerializeToString())
    assert status == 401 and headers.get("www-authenticate") == "Bearer"
    status, _ = post(proxy.host, proxy.port, numbered_request(1)[0].SerializeToString(),
                     headers={"Authorization": "bearer " + token})
    assert status == 200
    assert sorted(fake_mlflow.wait_for_spans(3))  # both authorized requests arrive
    assert token not in proxy.log_text()

    config = tmp_path / "inline.yaml"
    config.write_text(json.dumps({"receiver": {"auth": {"bearer_token": token}}}))
    shown = subprocess.run([str(proxy_binary), "--check-config", "--config", str(config)],
                           capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    assert token not in shown.stdout and 'bearer_token: "<hidden>"' in shown.stdout


def test_tls_and_mutual_tls(grpc_proxy, fake_mlflow, tmp_path):
    certs = make_certificates(tmp_path)
    pem = {name: certs.read(name) for name in ("ca.pem", "client.key", "client.pem")}
    tls = {"cert_file": str(tmp_path / "server.pem"), "key_file": str(tmp_path / "server.key")}
    proxy = grpc_proxy({"receiver": {"tls": tls}})
    request, ids = numbered_request(2)
    export(proxy.grpc_target, request, credentials=grpc.ssl_channel_credentials(pem["ca.pem"]))
    assert sorted(fake_mlflow.wait_for_spans(2)) == sorted(ids)
    plaintext = export_error(proxy.grpc_target, request, timeout=5)
    assert plaintext.code() == grpc.StatusCode.UNAVAILABLE

    mutual = grpc_proxy({"receiver": {"tls": {**tls, "client_ca_file": str(tmp_path / "ca.pem")}}})
    anonymous = export_error(mutual.grpc_target, request, timeout=5,
                             credentials=grpc.ssl_channel_credentials(pem["ca.pem"]))
    assert anonymous.code() == grpc.StatusCode.UNAVAILABLE
    request, ids = numbered_request(2)
    export(mutual.grpc_target, request, credentials=grpc.ssl_channel_credentials(
        pem["ca.pem"], private_key=pem["client.key"], certificate_chain=pem["client.pem"]))
    fake_mlflow.wait_for_spans(4)
    assert set(ids) <= set(fake_mlflow.delivered_span_ids())


def test_grpc_listen_off_and_a_taken_port(grpc_proxy, fake_mlflow, tmp_path, proxy_binary):
    off = grpc_proxy(extra_args=["--grpc-listen", "off"])
    assert "OTLP/gRPC" not in off.log_text()
    status, _ = post(off.host, off.port, numbered_request(1)[0].SerializeToString())
    assert status == 200

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(proxy_binary), "--listen", f"127.0.0.1:{free_port()}", "--experiment-id", "1",
             "--mlflow-url", fake_mlflow.url, "--grpc-listen", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert f"cannot listen for OTLP/gRPC on 127.0.0.1:{port}" in result.stdout + result.stderr


def test_an_idle_connection_is_closed_after_receiver_idle_timeout(grpc_proxy, fake_mlflow):
    """receiver.idle_timeout bounds idle gRPC connections too: the proxy sends GOAWAY, the client
    channel goes back to IDLE, and its next export reconnects."""
    proxy = grpc_proxy({"receiver": {"idle_timeout": "500ms"}})
    states: list[grpc.ChannelConnectivity] = []
    channel, client = stub(proxy.grpc_target)
    with channel:
        channel.subscribe(states.append, try_to_connect=False)
        first, first_ids = numbered_request(1)
        client.Export(first, timeout=10)
        wait_until(lambda: grpc.ChannelConnectivity.READY in states, timeout=5)
        ready_at = len(states) - 1 - states[::-1].index(grpc.ChannelConnectivity.READY)
        wait_until(lambda: grpc.ChannelConnectivity.IDLE in states[ready_at:], timeout=10,
                   what="the idle connection closed by the proxy")
        second, second_ids = numbered_request(1)
        client.Export(second, timeout=10)
    assert sorted(fake_mlflow.wait_for_spans(2)) == sorted(first_ids + second_ids)
