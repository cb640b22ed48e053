"""Smoke of the benchmark's own tools (bench/loadgen.cpp, bench/fake_sink.cpp): the load generator
drives the proxy for two seconds, the proxy delivers to the fake sink, and every span the
generator had acknowledged is counted there, with the experiment header. The benchmark proper
(bench/compare.py) runs outside CI."""
from __future__ import annotations

import contextlib
import gzip
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from support.net import wait_until
from support.proxy_process import ProxyProcess

SANITIZED = os.environ.get("PROXY_SANITIZED") == "1"


def bench_tool(proxy_binary: Path, name: str) -> Path:
    """The tools are built into <build>/bench/ next to <build>/src/otlp-mlflow-proxy."""
    path = proxy_binary.parent.parent / "bench" / name
    if not (path.exists() and os.access(path, os.X_OK)):
        if os.environ.get("E2E_REQUIRE_PROXY") == "1":
            pytest.fail(f"{path} not built (target {name})")
        pytest.skip(f"{path} not built (target {name})")
    return path


@contextlib.contextmanager
def running_sink(tmp_path: Path, proxy_binary: Path, decode: str):
    port_file = tmp_path / f"sink-{decode}.port"
    log_path = tmp_path / f"sink-{decode}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(bench_tool(proxy_binary, "bench-fake-sink")), "--listen", "127.0.0.1:0",
                                 "--port-file", str(port_file), "--require-header", "x-mlflow-experiment-id",
                                 "--decode", decode],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_until(port_file.exists, timeout=15, what="the fake sink's port file")
            yield f"http://127.0.0.1:{port_file.read_text().strip()}"
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0, log_path.read_text()


@pytest.fixture
def sink(tmp_path, proxy_binary):
    with running_sink(tmp_path, proxy_binary, "walk") as url:
        yield url


def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def loadgen(proxy_binary: Path, url: str, *args: str) -> dict:
    out = subprocess.run([str(bench_tool(proxy_binary, "bench-loadgen")), "--url", url, "--warmup", "0",
                          "--duration", "2", *args],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    return json.loads(lines[0])


def test_fake_sink_answers_like_mlflow(sink):
    assert get(sink + "/version") == (200, b"3.7.0")
    assert get(sink + "/health") == (200, b"OK")
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(sink + "/nothing")
    assert missing.value.code == 404
    # Without the experiment header: 400, counted. A body that is no protobuf: 400, counted.
    request = urllib.request.Request(sink + "/v1/traces", data=b"", method="POST",
                                     headers={"Content-Type": "application/x-protobuf"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 400
    request.add_header("x-mlflow-experiment-id", "1")
    request.data = b"\xff\xff\xff"
    with pytest.raises(urllib.error.HTTPError) as garbage:
        urllib.request.urlopen(request, timeout=5)
    assert garbage.value.code == 400
    stats = json.loads(get(sink + "/stats")[1])
    assert stats == {"requests": 0, "spans": 0, "bytes": 0, "bad_header": 1, "decode_errors": 1}


def export_request(spans_per_scope: list[int]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for n in spans_per_scope:
        scope = request.resource_spans.add().scope_spans.add()
        for i in range(n):
            span = scope.spans.add(trace_id=bytes(range(1, 17)), span_id=bytes([i + 1] * 8), name=f"s{i}")
            span.attributes.add(key="gen_ai.input.messages").value.string_value = "x" * 40
    return request


def post(url: str, body: bytes, encoding: str | None = None) -> int:
    headers = {"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": "1"}
    if encoding:
        headers["Content-Encoding"] = encoding
    request = urllib.request.Request(url + "/v1/traces", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("decode", ["walk", "full"])
def test_fake_sink_counts_spans_and_refuses_misframed_bodies(tmp_path, proxy_binary, decode):
    """Both decoders count the same spans, plain and gzipped, and refuse the same broken bodies;
    the walk also refuses spans whose ids MLflow could not store."""
    good = export_request([3, 0, 2]).SerializeToString()
    truncated = good[:-5]
    bad_id = export_request([1])
    bad_id.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x01\x02\x03\x04"
    misframed_attribute = bytearray(good)
    # The last attribute's key length prefix claims more bytes than its KeyValue holds.
    misframed_attribute[good.rindex(b"gen_ai.input.messages") - 1] = 0x7f
    with running_sink(tmp_path, proxy_binary, decode) as url:
        assert post(url, good) == 200
        assert post(url, gzip.compress(good), "gzip") == 200
        assert post(url, b"") == 200  # an empty request: no spans
        assert post(url, truncated) == 400
        assert post(url, b"\x00") == 400  # field number 0
        assert post(url, bytes(misframed_attribute)) == 400
        assert post(url, gzip.compress(good)[:-3], "gzip") == 400
        assert post(url, bad_id.SerializeToString()) == (400 if decode == "walk" else 200)
        stats = json.loads(get(url + "/stats")[1])
    assert stats["spans"] == 10 + (1 if decode == "full" else 0), stats
    assert stats["decode_errors"] == 4 + (1 if decode == "walk" else 0), stats


@pytest.mark.parametrize("args", [["--rate", "5000", "--spans-per-request", "50"],
                                  ["--rate", "1000", "--spans-per-request", "1", "--gzip"]],
                         ids=["batched", "one-span-gzip"])
def test_loadgen_through_proxy_to_sink(tmp_path, proxy_binary, proxy_log_report, sink, args):
    proxy = ProxyProcess(tmp_path, binary=proxy_binary, mlflow_url=sink, experiment_id="1")
    proxy_log_report([proxy])
    proxy.start()
    try:
        result = loadgen(proxy_binary, proxy.traces_url, "--connections", "2", *args)
        assert result["errors"] == 0 and result["status"] == {"200": result["requests"]}, result
        rate = float(args[1])
        # Open loop at a fixed rate: two seconds' worth, give or take the last request.
        assert result["spans"] >= rate * 2 * 0.95, result
        assert result["latency_us"]["p50"] > 0 and result["latency_us"]["max"] >= result["latency_us"]["p999"]
        # spans_per_s runs to the last answer, which a loaded machine can delay: only roughly.
        if not SANITIZED:
            assert rate * 0.5 < result["spans_per_s"] <= rate * 1.05, result

        def delivered():
            return json.loads(get(sink + "/stats")[1])["spans"] >= result["spans"]
        wait_until(delivered, timeout=30, what="the proxy to deliver every span to the sink")
        time.sleep(0.3)  # nothing more than what was acknowledged arrives late
        stats = json.loads(get(sink + "/stats")[1])
        assert stats["spans"] == result["spans"], (stats, result)
        assert stats["bad_header"] == 0 and stats["decode_errors"] == 0, stats
    finally:
        proxy.stop()


def test_compare_counts_structure_kept_content_as_masked_and_any_clear_leaf_as_clear():
    """bench/compare.py reports 'content in clear' per system: the proxy's default keeps JSON
    content's structure, so a value is masked when every leaf is, and clear when one is not."""
    import importlib
    import sys
    bench = str(Path(__file__).resolve().parents[2] / "bench")
    sys.path.insert(0, bench)  # compare.py imports its siblings
    try:
        compare = importlib.import_module("compare")
    finally:
        sys.path.remove(bench)
    masked = [
        "[masked: 12 bytes]",
        "****",
        '[{"role":"user","parts":[{"type":"text","content":"[masked: 2 bytes]"}],"n":0,"ok":false,"x":null}]',
        '{"tool_calls":[{"id":"c1","function":{"name":"search","arguments":"{\\"q\\":\\"[masked: 5 bytes]\\"}"}}]}',
    ]
    clear = [
        "hello",
        '[{"role":"user","content":"hello"}]',
        '[{"role":"user","n":3}]',
        '[{"role":"user","ok":true}]',
        '{"tool_calls":[{"id":"c1","function":{"name":"search","arguments":"{\\"q\\":\\"paris\\"}"}}]}',
        "[not json",
    ]
    assert [compare.is_masked_text(v) for v in masked] == [True] * len(masked)
    assert [compare.is_masked_text(v) for v in clear] == [False] * len(clear)
