"""Writes the seed corpora in fuzz/corpus/ from real requests: an OTLP export shaped like a Koog
agent run (as the OpenTelemetry SDK encodes it), its OTLP-JSON form, compressed forms, raw HTTP
requests around them, and config files. Run with the test virtualenv's python:
    ~/.cache/otlp-mlflow-proxy/venv/bin/python fuzz/make_seeds.py"""
from __future__ import annotations

import gzip
import shutil
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.otlp_json import build_small_trace  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from google.protobuf import json_format  # noqa: E402

CORPUS = ROOT / "fuzz" / "corpus"


def write(target: str, name: str, data: bytes) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def koog_request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in [("service.name", "koog-agent"), ("telemetry.sdk.language", "java")]:
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = key, value
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "ai.koog", "0.5.0"
    names = ["create_agent weather", "invoke_agent weather", "strategy main", "node callLLM",
             "chat gpt-4o", "execute_tool get_weather"]
    for i, name in enumerate(names):
        span = ss.spans.add()
        span.trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
        span.span_id = (i + 1).to_bytes(8, "big")
        if i:
            span.parent_span_id = i.to_bytes(8, "big")
        span.name = name
        span.kind = 3 if name.startswith("chat") else 1
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + i
        span.end_time_unix_nano = 1_700_000_001_000_000_000
        attr = span.attributes.add()
        attr.key, attr.value.string_value = "gen_ai.operation.name", name.split()[0]
        if name.startswith("chat"):
            for key, value in [("gen_ai.usage.input_tokens", 12), ("gen_ai.usage.output_tokens", 34)]:
                kv = span.attributes.add()
                kv.key, kv.value.int_value = key, value
            kv = span.attributes.add()
            kv.key = "gen_ai.input.messages"
            kv.value.string_value = '[{"role":"user","content":"What is the weather in Paris?"}]'
            kv = span.attributes.add()
            kv.key = "gen_ai.request.stop"
            kv.value.array_value.values.add().string_value = "\n"
            kv = span.attributes.add()
            kv.key = "nested"
            inner = kv.value.kvlist_value.values.add()
            inner.key, inner.value.double_value = "temperature", 0.2
            event = span.events.add()
            event.name, event.time_unix_nano = "gen_ai.choice", 1_700_000_000_500_000_000
            link = span.links.add()
            link.trace_id, link.span_id = bytes(range(16)), bytes(range(8))
        if name.startswith("execute_tool"):
            span.status.code, span.status.message = 2, "tool failed: timeout"
    return request


def http(method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1:4318"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body and "Transfer-Encoding" not in headers:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(body: bytes) -> bytes:
    half = len(body) // 2
    parts = [body[:half], body[half:]]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


def main() -> None:
    shutil.rmtree(CORPUS, ignore_errors=True)
    proto = koog_request().SerializeToString()
    json_body = json_format.MessageToJson(koog_request()).encode()  # base64 ids: a reject seed
    small_json = build_small_trace(trace_id="0af7651916cd43dd8448eb211c80319c").json_bytes()

    write("otlp_protobuf", "koog_trace.pb", proto)
    write("otlp_protobuf", "empty.pb", b"")
    write("otlp_json", "koog_trace.json", (ROOT / "tests/data/otlp_json/koog_trace.json").read_bytes())
    write("otlp_json", "small_trace.json", small_json)
    write("otlp_json", "protobuf_json_mapping_base64_ids.json", json_body)
    write("decompress", "gzip", b"\x01" + gzip.compress(proto))
    write("decompress", "zlib_deflate", b"\x02" + zlib.compress(proto))
    raw = zlib.compressobj(wbits=-15)
    write("decompress", "raw_deflate", b"\x02" + raw.compress(proto) + raw.flush())
    write("decompress", "identity", b"\x00" + proto)

    pb = {"Content-Type": "application/x-protobuf"}
    write("http_request", "protobuf", http("POST", "/v1/traces", pb, proto))
    write("http_request", "protobuf_gzip", http("POST", "/v1/traces", {**pb, "Content-Encoding": "gzip"}, gzip.compress(proto)))
    write("http_request", "json", http("POST", "/v1/traces", {"Content-Type": "application/json"}, small_json))
    write("http_request", "chunked", http("POST", "/v1/traces", {**pb, "Transfer-Encoding": "chunked"}, chunked(proto)))
    write("http_request", "experiment_header", http("POST", "/v1/traces?x=1", {**pb, "x-mlflow-experiment-id": "12"}, proto))
    write("http_request", "get", http("GET", "/v1/traces", {}, b""))
    write("http_request", "wrong_type", http("POST", "/v1/traces", {"Content-Type": "text/plain"}, b"hello"))

    write("config_yaml", "example.yaml", (ROOT / "config/otlp-mlflow-proxy.yaml").read_bytes())
    every_key = ROOT / "tests/data/config/every-key.yaml"
    if every_key.exists():
        write("config_yaml", "every_key.yaml", every_key.read_bytes())
    write("config_yaml", "small.yaml", b"receiver:\n  listen: \"[::1]:4318\"\n  max_body_bytes: 1MiB\nlog: {level: debug}\n")


if __name__ == "__main__":
    main()
