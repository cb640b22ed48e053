"""Fault tests against a scripted fake MLflow: retry delays, the status table, the dead-letter
file and `replay`, backpressure with the Python OTel SDK, a damaged spool, SIGTERM with a
backlog. Each is bounded in time."""
from __future__ import annotations

import subprocess
import time
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from support.delivery import (LoadSender, numbered_request, post, read_dead_letters,
                              record_offsets, segment_files, span_ids_of, mlflow_span_ids)
from support.fake_mlflow import ScriptedAnswer
from support.net import wait_until
from support.otel_clients import send_span_per_export
from support.proxy_process import ProxyProcess

FAST_RETRY = {"initial_backoff": "50ms", "max_backoff": "500ms", "max_transient_422_retries": 2}


@pytest.fixture
def proxy_teardown() -> str:
    return "kill"  # tests leave MLflow failing: a draining SIGTERM would wait out the deadline


def send(proxy: ProxyProcess, spans: int = 3) -> list[str]:
    request, ids = numbered_request(spans)
    status, _ = post(proxy.host, proxy.port, request.SerializeToString())
    assert status == 200
    return ids


def test_503_with_retry_after_is_honoured(fake_mlflow, proxy_factory):
    fake_mlflow.script = [ScriptedAnswer(503, "{}", {"Retry-After": "2"})]
    proxy = proxy_factory({"mlflow": {"experiment_id": "1"},
                                      "exporter": {"retry": FAST_RETRY}})
    ids = send(proxy)
    fake_mlflow.wait_for_spans(len(ids), timeout=15)
    first, second = fake_mlflow.exports[0], fake_mlflow.exports[1]
    assert first.status == 503 and second.status == 200
    assert second.time - first.time >= 2.0, "the proxy did not wait for Retry-After"


def test_status_table_dead_letters_exactly_the_rejected_spans_and_replay_delivers_them(
        fake_mlflow, proxy_factory, tmp_path, proxy_binary, mlflow, unique_name):
    dead_letter = tmp_path / "dead.otlpdl"
    name = unique_name("faults")
    proxy = proxy_factory({
        "mlflow": {"experiment_name": name},
        "exporter": {"retry": FAST_RETRY, "dead_letter_file": str(dead_letter),
                     "batch_linger": "0ms"}})
    outcomes = {}
    for status, body in [(429, "{}"), (500, '{"detail":"boom"}'), (400, '{"detail":"bad span"}'),
                         (413, "too large"), (422, '{"detail":"Invalid OTLP span"}')]:
        before = len(fake_mlflow.exports)
        fake_mlflow.script = [ScriptedAnswer(status, body)]
        retried = status in (429, 500)
        # One span where MLflow refuses: a request of several would be sent again in parts
        # (test_one_refused_span_among_512_is_the_only_one_dead_lettered).
        ids = send(proxy, 3 if retried else 1)
        wait_until(lambda: len(fake_mlflow.exports) >= before + (2 if retried else 1), 10,
                   what=f"the proxy's handling of {status}")
        time.sleep(0.3)  # a wrong retry would show up here
        outcomes[status] = (ids, [e.status for e in fake_mlflow.exports[before:]])

    assert outcomes[429][1] == [429, 200]
    assert outcomes[500][1] == [500, 200]
    for status in (400, 413, 422):
        assert outcomes[status][1] == [status], f"{status} must not be retried"
    delivered = set(fake_mlflow.delivered_span_ids())
    assert set(outcomes[429][0]) <= delivered and set(outcomes[500][0]) <= delivered

    records = read_dead_letters(dead_letter)
    assert [r["status"] for r in records] == [400, 413, 422]
    for record, status in zip(records, (400, 413, 422)):
        assert span_ids_of(record["request"]) == outcomes[status][0]
        assert f"MLflow answered {status}" in record["reason"]
        assert record["experiment"] == f"name:{name}"
        assert record["span_count"] == 1
        assert abs(record["time_ms"] / 1000 - time.time()) < 120
    assert "dead-lettered 1 spans" in proxy.log_text()

    # Replay into a real MLflow: every dead-lettered span arrives.
    result = subprocess.run([str(proxy_binary), "replay", "--mlflow-url", mlflow.url,
                             "--timeout", "60s", str(dead_letter)],
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 of 3 spans delivered" in result.stdout
    experiment_id = mlflow.experiment_id_by_name(name)
    want = sorted(outcomes[400][0] + outcomes[413][0] + outcomes[422][0])
    wait_until(lambda: sorted(mlflow_span_ids(mlflow, experiment_id)) == want, 30,
               what="the replayed spans in MLflow")


def test_one_refused_span_among_512_is_the_only_one_dead_lettered(fake_mlflow, proxy_factory,
                                                                  tmp_path):
    """MLflow refuses a whole request for one span it cannot store: the proxy sends the request
    again trace by trace, then the refused trace span by span, so only that span is
    dead-lettered and the other 511 are delivered, once each."""
    dead_letter = tmp_path / "dead.otlpdl"
    fake_mlflow.refuse_spans_with = "test.refuse"
    proxy = proxy_factory({"mlflow": {"experiment_id": "1"},
                           "exporter": {"retry": FAST_RETRY, "dead_letter_file": str(dead_letter),
                                        "batch_linger": "0ms"}})
    request, ids = ExportTraceServiceRequest(), []
    for _ in range(8):
        part, part_ids = numbered_request(64)
        request.resource_spans.extend(part.resource_spans)
        ids += part_ids
    bad = request.resource_spans[5].scope_spans[0].spans[17]
    marker = bad.attributes.add()
    marker.key, marker.value.string_value = "test.refuse", "yes"
    assert post(proxy.host, proxy.port, request.SerializeToString())[0] == 200

    wait_until(lambda: dead_letter.exists() and read_dead_letters(dead_letter), 30,
               what="the refused span in the dead-letter file")
    delivered = fake_mlflow.wait_for_spans(511, timeout=30)
    time.sleep(0.3)  # anything sent twice would show up here
    (record,) = read_dead_letters(dead_letter)
    assert span_ids_of(record["request"]) == [bad.span_id.hex()]
    assert record["status"] == 400 and record["span_count"] == 1
    assert "MLflow answered 400" in record["reason"]
    assert sorted(fake_mlflow.delivered_span_ids()) == sorted(i for i in ids if i != bad.span_id.hex())
    assert len(delivered) == 511
    # The whole request, its 8 traces, then the refused trace's 64 spans.
    assert len(fake_mlflow.exports) == 1 + 8 + 64
    log = proxy.log_text()
    assert "sending them again trace by trace (8 parts" in log, log
    assert "sending them again span by span (64 parts" in log, log


def test_queue_full_answers_429_and_the_otel_sdk_delivers_everything(fake_mlflow, proxy_factory):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # MLflow unavailable for a few seconds: the small queue fills up.
    fake_mlflow.script = [ScriptedAnswer(503, "{}", {"Retry-After": "1"}) for _ in range(3)]
    proxy = proxy_factory({"mlflow": {"experiment_id": "1"},
                                      "queue": {"max_bytes": "16KiB", "retry_after": "1s"},
                                      "exporter": {"retry": FAST_RETRY}})
    raw_ids = []
    for _ in range(50):
        request, ids = numbered_request(3, payload_bytes=1500)
        status, headers = post(proxy.host, proxy.port, request.SerializeToString())
        if status == 429:
            assert headers.get("retry-after") == "1"
            break
        assert status == 200
        raw_ids += ids
    else:
        pytest.fail("the queue never filled up")

    sdk_ids, results = send_span_per_export(OTLPSpanExporter(endpoint=proxy.traces_url, timeout=60),
                                            tracer_name="fault-test")
    assert results == ["SUCCESS"] * 24, results
    delivered = fake_mlflow.wait_for_spans(len(raw_ids) + len(sdk_ids), timeout=30)
    assert set(raw_ids) | set(sdk_ids) <= set(delivered)
    assert "the proxy's queue is full" in proxy.log_text()


def test_damaged_spool_starts_counts_and_delivers_the_rest(fake_mlflow, proxy_factory, tmp_path):
    state = tmp_path / "state"
    config = {"mlflow": {"experiment_id": "1"},
              "queue": {"durability": "disk", "state_dir": str(state), "fsync": "always"},
              "exporter": {"retry": FAST_RETRY}}
    fake_mlflow.script = [ScriptedAnswer(503, "{}") for _ in range(10_000)]
    proxy = proxy_factory(config, name="before")
    sent = [send(proxy) for _ in range(5)]
    proxy.kill()  # SIGKILL: nothing delivered, everything in the spool

    segment = segment_files(state)[-1]
    data = bytearray(segment.read_bytes())
    offsets = record_offsets(bytes(data))
    assert len(offsets) == 5
    corrupt_at, corrupt_len = offsets[1]
    data[corrupt_at + corrupt_len - 5] ^= 0xFF  # flip a payload byte of record 2
    data = data[:offsets[4][0] + offsets[4][1] - 7]  # record 5 cut short
    segment.write_bytes(bytes(data))

    fake_mlflow.script = []
    restarted = proxy_factory(config, name="after")
    want = sent[0] + sent[2] + sent[3]
    fake_mlflow.wait_for_spans(len(want), timeout=15)
    time.sleep(0.5)
    assert sorted(set(fake_mlflow.delivered_span_ids())) == sorted(want)
    log = restarted.log_text()
    assert "1 torn tails truncated, 1 corrupt records skipped" in log
    assert restarted.stop(timeout=20) == 0


def test_sigterm_with_a_backlog_keeps_it_in_the_spool_then_delivers_it(fake_mlflow, proxy_factory, tmp_path):
    state = tmp_path / "state"
    config = {"mlflow": {"experiment_id": "1"}, "shutdown_timeout": "1s",
              "queue": {"durability": "disk", "state_dir": str(state)},
              "exporter": {"retry": FAST_RETRY}}
    fake_mlflow.script = [ScriptedAnswer(503, "{}") for _ in range(10_000)]
    proxy = proxy_factory(config, name="draining")
    sent = [sid for _ in range(4) for sid in send(proxy)]
    started = time.monotonic()
    assert proxy.stop(timeout=20) == 0
    assert time.monotonic() - started < 10
    assert f"{len(sent)} undelivered spans kept in the spool" in proxy.log_text()

    fake_mlflow.script = []
    restarted = proxy_factory(config, name="restarted")
    fake_mlflow.wait_for_spans(len(sent), timeout=15)
    assert set(sent) <= set(fake_mlflow.delivered_span_ids())
    assert restarted.stop(timeout=20) == 0
    assert "drained: every acknowledged span was delivered" in restarted.log_text()


def test_sigterm_in_memory_mode_dead_letters_the_backlog(fake_mlflow, proxy_factory, tmp_path):
    dead_letter = tmp_path / "dl.otlpdl"
    config = {"mlflow": {"experiment_id": "1"}, "shutdown_timeout": "1s",
              "exporter": {"retry": FAST_RETRY, "dead_letter_file": str(dead_letter)}}
    fake_mlflow.script = [ScriptedAnswer(503, "{}") for _ in range(10_000)]
    proxy = proxy_factory(config)
    sent = [sid for _ in range(3) for sid in send(proxy)]
    assert proxy.stop(timeout=20, expect_exit_code=1) == 1
    assert f"{len(sent)} undelivered spans dead-lettered to {dead_letter}" in proxy.log_text()
    kept = [sid for r in read_dead_letters(dead_letter) for sid in span_ids_of(r["request"])]
    assert sorted(kept) == sorted(sent)


def test_sigkill_under_load_with_fsync_always_loses_no_acknowledged_span(fake_mlflow, proxy_factory,
                                                                         tmp_path):
    state = tmp_path / "state"
    config = {"mlflow": {"experiment_id": "1"},
              "queue": {"durability": "disk", "state_dir": str(state), "fsync": "always"},
              "exporter": {"retry": FAST_RETRY}}
    # MLflow slow to accept at first, so the kill finds spans both queued and in flight.
    fake_mlflow.script = [ScriptedAnswer(503, "{}") for _ in range(20)]
    proxy = proxy_factory(config, name="killed")
    load = LoadSender(proxy.host, proxy.port, threads=4).start()
    time.sleep(1.5)
    proxy.kill()
    load.stop()
    assert len(load.acknowledged) > 0
    restarted = proxy_factory(config, name="restarted")
    wait_until(lambda: set(load.acknowledged) <= set(fake_mlflow.delivered_span_ids()), 30,
               what="every acknowledged span at the fake MLflow")
    assert restarted.stop(timeout=20) == 0
