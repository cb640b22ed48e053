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


def hostile_request() -> ExportTraceServiceRequest:
    """Content keys holding deep arrays and kvlists, secrets for redact, events and links with
    attributes: what the policy walk must survive in every mode."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "hostile"
    span = rs.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes(range(1, 17)), bytes(range(1, 9)), "chat"
    for key, kind in [("gen_ai.input.messages", "array"), ("nested.config", "kvlist"),
                      ("gen_ai.output.messages", "kvlist")]:
        value = span.attributes.add()
        value.key = key
        inner = value.value
        for depth in range(30):  # deeper than any max_depth, within protobuf's 100 levels
            if kind == "array":
                inner = inner.array_value.values.add()
            else:
                entry = inner.kvlist_value.values.add()
                entry.key = "content" if depth % 2 else f"level{depth}"
                inner = entry.value
        inner.string_value = "Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123 mail me@example.com"
    for key, text in [("api_key", "sk-proj-" + "a1B2" * 10), ("url", "https://user:hunter2@example.com/x"),
                      ("card", "4111 1111 1111 1111"), ("koog", "HIDDEN:non-empty")]:
        value = span.attributes.add()
        value.key, value.value.string_value = key, text
    for key, number in [("gen_ai.usage.input_tokens", 12), ("flag", True), ("ratio", 0.5)]:
        value = span.attributes.add()
        value.key = key
        if isinstance(number, bool):
            value.value.bool_value = number
        elif isinstance(number, float):
            value.value.double_value = number
        else:
            value.value.int_value = number
    value = span.attributes.add()
    value.key, value.value.bytes_value = "gen_ai.prompt", "caf\u00e9 \u2603 prompt".encode() * 4
    event = span.events.add()
    event.name = "gen_ai.choice"
    for key in ["message", "content", "exception.message"]:
        value = event.attributes.add()
        value.key, value.value.string_value = key, "secret sk-ant-api03-" + "x" * 24
    link = span.links.add()
    link.trace_id, link.span_id = bytes(range(16)), bytes(range(8))
    value = link.attributes.add()
    value.key = "gen_ai.input.messages"
    value.value.array_value.values.add().kvlist_value.values.add().key = "role"
    span.status.code, span.status.message = 2, "failed with token ghp_" + "A" * 36
    return request


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def spool_record(record_id: int, spans: int, experiment: str, payload: bytes) -> bytes:
    """One framed record as src/queue/spool.hpp describes it."""
    body = (record_id.to_bytes(8, "little") + spans.to_bytes(4, "little") + b"\x01" +
            len(experiment).to_bytes(4, "little") + experiment.encode() + payload)
    return (0x52504D4F).to_bytes(4, "little") + len(body).to_bytes(4, "little") + \
        crc32c(body).to_bytes(4, "little") + body


def ack_entry(record_id: int) -> bytes:
    raw = record_id.to_bytes(8, "little")
    return raw + crc32c(raw).to_bytes(4, "little")


JSON_STRUCTURE_SEEDS = {
    "genai_messages": (0x87, b'[{"role":"system","parts":[{"type":"text","content":"You are a calculator."}]},'
                             b'{"role":"user","parts":[{"type":"text","content":"What is 6 * 7?"}]},'
                             b'{"role":"assistant","parts":[{"type":"tool_call","id":"call_1","name":"multiply",'
                             b'"arguments":{"a":6,"b":7}}]},{"role":"tool","parts":[{"type":"tool_call_response",'
                             b'"id":"call_1","response":"42"}]}]'),
    "openai_chat": (0x07, b'{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text",'
                          b'"text":"hi \\u00e9\\ud83d\\ude00"}]},{"role":"assistant","content":null,"tool_calls":'
                          b'[{"id":"c","type":"function","function":{"name":"get_weather","arguments":'
                          b'"{\\"city\\":\\"Paris\\",\\"n\\":[1,2.5e3,true]}"}}]}],"temperature":0.2}'),
    "deep": (0x02, b'[[[[[[["x"]]]]]]]'),
    "broken": (0x88, b'{"role":"user","content":"unterminated'),
    "odd_whitespace": (0x8F, b' \t[ 1 , -0.5E-2 , false , null , "" , {} , [ ] , "[1] not json" ]\n'),
}


def normalize_request() -> ExportTraceServiceRequest:
    """Spans every normalization rule reads: Koog nodes with inputs, string token counts, system
    instructions, sessions, users, links, a resource attribute keyed as a count."""
    request = koog_request()
    rs = request.resource_spans[0]
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "gen_ai.usage.input_tokens", "5"
    spans = rs.scope_spans[0].spans
    node = spans[3]
    for key, value in [("koog.node.id", "callLLM"), ("koog.node.input", '{"city":"Paris"}'),
                       ("koog.node.output", "sunny"), ("gen_ai.usage.output_tokens", "34"),
                       ("gen_ai.conversation.id", "c-1"), ("enduser.id", "u-1")]:
        kv = node.attributes.add()
        kv.key, kv.value.string_value = key, value
    chat = spans[4]
    kv = chat.attributes.add()
    kv.key, kv.value.string_value = "system_instructions", '[{"type":"text","content":"Be brief."}]'
    kv = chat.attributes.add()
    kv.key, kv.value.string_value = "gen_ai.input.messages", '[{"role":"user","parts":[]}]'
    return request


def normalize_seeds(proto: bytes) -> None:
    # wire_normalize: byte 0 switches rules off (links on), byte 1 picks the resource target,
    # resource keys and span type rules (normalize_config_from in fuzz/).
    rich = normalize_request().SerializeToString()
    for name, config in [("defaults", b"\x00\x00"), ("links_resource_keys", b"\x08\x0a"),
                         ("all_off", b"\xf6\x01"), ("disabled", b"\x01\x80"), ("type_rules", b"\x08\x7c")]:
        write("wire_normalize", f"koog_{name}", config + rich)
    write("wire_normalize", "koog_plain", b"\x08\x08" + proto)
    write("wire_normalize", "hostile", b"\x08\x0a" + hostile_request().SerializeToString())


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

    # policy_walk: byte 0 picks the modes (content + 6 errors + 36 other; 216+: all mask),
    # byte 1 max_depth (1 + b % 16) and truncate_bytes (1 + b / 16).
    hostile = hostile_request().SerializeToString()
    for name, modes in [("verbose", 0), ("mask", 216), ("hash", 2 + 12 + 72), ("truncate", 3 + 18 + 108),
                        ("drop", 4 + 24 + 144), ("redact", 5 + 30 + 180), ("mixed", 1 + 30 + 0)]:
        write("policy_walk", f"hostile_{name}", bytes([modes, 7 + 16 * 4]) + hostile)
    write("policy_walk", "koog_redact_depth1", bytes([5 + 30 + 180, 0]) + proto)

    # json_structure: byte 0 gives max_depth (1 + b % 16) and, with bit 7, role and part
    # selectors; the rest is a content value's text.
    for name, (first, text) in JSON_STRUCTURE_SEEDS.items():
        write("json_structure", name, bytes([first]) + text)

    # spool_records: byte 0 bit 0 prepends the segment header, bits 1-3 count 12-byte ack entries
    # that follow it; the rest is the segment.
    records = [spool_record(i + 1, 6, "agents", proto) for i in range(3)]
    write("spool_records", "three_records", b"\x01" + b"".join(records))
    write("spool_records", "one_acked", bytes([1 | (1 << 1)]) + ack_entry(2) + b"".join(records))
    write("spool_records", "torn_tail", b"\x01" + b"".join(records)[:-7])
    damaged = bytearray(b"".join(records))
    damaged[len(records[0]) + 40] ^= 0xFF  # a flipped byte inside the second record's body
    write("spool_records", "corrupt_middle", b"\x01" + bytes(damaged))
    write("spool_records", "no_header", b"\x00" + b"NOTASPOOL" + records[0])

    normalize_seeds(proto)

    write("config_yaml", "example.yaml", (ROOT / "config/otlp-mlflow-proxy.yaml").read_bytes())
    every_key = ROOT / "tests/data/config/every-key.yaml"
    if every_key.exists():
        write("config_yaml", "every_key.yaml", every_key.read_bytes())
    write("config_yaml", "small.yaml", b"receiver:\n  listen: \"[::1]:4318\"\n  max_body_bytes: 1MiB\nlog: {level: debug}\n")


if __name__ == "__main__":
    main()
