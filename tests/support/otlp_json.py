"""OTLP requests built by hand: OTLP-JSON (hex ids, lowerCamelCase keys, enums as integers,
64-bit integers as strings) and the same request as protobuf, posted over raw HTTP.

The description returned with a body is a `SentTrace` (see otel_clients) so tests compare what
MLflow holds with `compare_trace` / `assert_trace_matches` exactly as for SDK-sent traces.
"""
from __future__ import annotations

import base64
import copy
import gzip
import json
import os
import time
import zlib
from dataclasses import dataclass
from typing import Any

import requests
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse)

from .otel_clients import EXPERIMENT_HEADER, SentEvent, SentSpan, SentTrace, traces_endpoint

CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_PROTOBUF = "application/x-protobuf"

SPAN_KIND = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
STATUS_CODE = {"UNSET": 0, "OK": 1, "ERROR": 2}


def random_trace_id() -> str:
    return os.urandom(16).hex()


def random_span_id() -> str:
    return os.urandom(8).hex()


def any_value(v: Any) -> dict:
    """A Python value as an OTLP-JSON AnyValue (int64 as a string, as the spec's JSON mapping)."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    if isinstance(v, bytes):
        return {"bytesValue": base64.b64encode(v).decode()}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [any_value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": any_value(x)} for k, x in v.items()]}}
    raise TypeError(f"no AnyValue for {type(v).__name__}")


def key_values(attrs: dict[str, Any]) -> list[dict]:
    return [{"key": k, "value": any_value(v)} for k, v in attrs.items()]


@dataclass
class OtlpRequest:
    body: dict  # OTLP-JSON ExportTraceServiceRequest
    trace: SentTrace  # what the body describes, for compare_trace

    def json_bytes(self) -> bytes:
        return json.dumps(self.body).encode()

    def protobuf_bytes(self) -> bytes:
        return to_protobuf(self.body)


def build_small_trace(*, trace_id: str | None = None, service_name: str = "otlp-json-e2e",
                      agent: str = "json-agent", model: str = "json-model",
                      resource: dict[str, Any] | None = None) -> OtlpRequest:
    """A two-span trace: root `invoke_agent <agent>` > `chat <model>` (CLIENT, ERROR status,
    one event, attributes of every scalar type and a string array)."""
    trace_id = trace_id or random_trace_id()
    root_id, child_id = random_span_id(), random_span_id()
    now = time.time_ns()
    root_start, child_start, child_end, root_end = now - 4_000_000, now - 3_000_000, \
        now - 2_000_000, now - 1_000_000
    event_time = now - 2_500_000
    root_attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent}
    child_attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": 5,       # intValue as a string on the wire
        "gen_ai.usage.output_tokens": 7,
        "json.int": 9007199254740993,         # > 2^53: must survive as an exact int64
        "json.double": 0.5,
        "json.bool": True,
        "json.strings": ["x", "y"],
    }
    event_attrs = {"index": 0, "finish_reason": "stop"}
    body = {"resourceSpans": [{
        "resource": {"attributes": key_values({"service.name": service_name, **(resource or {})})},
        "scopeSpans": [{
            "scope": {"name": "otlp-json-e2e", "version": "1.0"},
            "spans": [
                {"traceId": trace_id, "spanId": root_id, "name": f"invoke_agent {agent}",
                 "kind": SPAN_KIND["INTERNAL"],
                 "startTimeUnixNano": str(root_start), "endTimeUnixNano": str(root_end),
                 "attributes": key_values(root_attrs), "status": {}},
                {"traceId": trace_id, "spanId": child_id, "parentSpanId": root_id,
                 "name": f"chat {model}", "kind": SPAN_KIND["CLIENT"],
                 "startTimeUnixNano": str(child_start), "endTimeUnixNano": str(child_end),
                 "attributes": key_values(child_attrs),
                 "events": [{"timeUnixNano": str(event_time), "name": "gen_ai.choice",
                             "attributes": key_values(event_attrs)}],
                 "status": {"code": STATUS_CODE["ERROR"], "message": "model overloaded"}},
            ]}]}]}
    spans = {
        f"invoke_agent {agent}": SentSpan(f"invoke_agent {agent}", root_id, None, "INTERNAL",
                                          root_attrs, "UNSET", "", [], root_start, root_end),
        f"chat {model}": SentSpan(f"chat {model}", child_id, root_id, "CLIENT", child_attrs,
                                  "ERROR", "model overloaded",
                                  [SentEvent("gen_ai.choice", event_time, event_attrs)],
                                  child_start, child_end),
    }
    return OtlpRequest(body=body, trace=SentTrace(trace_id=trace_id, spans=spans,
                                                  resource={"service.name": service_name}))


def to_protobuf(body: dict) -> bytes:
    """An OTLP-JSON body as a serialized ExportTraceServiceRequest. OTLP-JSON ids are hex while
    protobuf's canonical JSON mapping wants base64 for bytes, so ids are converted first."""
    data = copy.deepcopy(body)
    for rs in data.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for f in ("traceId", "spanId", "parentSpanId"):
                    if span.get(f):
                        span[f] = base64.b64encode(bytes.fromhex(span[f])).decode()
                for link in span.get("links", []):
                    for f in ("traceId", "spanId"):
                        if link.get(f):
                            link[f] = base64.b64encode(bytes.fromhex(link[f])).decode()
    msg = ExportTraceServiceRequest()
    json_format.ParseDict(data, msg)
    return msg.SerializeToString()


def encode_body(data: bytes, content_encoding: str | None) -> bytes:
    if content_encoding in (None, "", "identity"):
        return data
    if content_encoding == "gzip":
        return gzip.compress(data)
    if content_encoding == "deflate":
        return zlib.compress(data)  # zlib-wrapped, as HTTP "deflate" means
    raise ValueError(f"unsupported content encoding {content_encoding!r}")


def post_otlp(url: str, body: bytes | dict | OtlpRequest, *, content_type: str | None = None,
              headers: dict[str, str] | None = None, experiment_id: str | None = None,
              content_encoding: str | None = None, timeout: float = 10.0,
              fmt: str = "json") -> requests.Response:
    """POSTs an OTLP trace request to url (<base> or <base>/v1/traces) over plain HTTP.

    body: raw bytes (sent as is, content_type required), an OTLP-JSON dict, or an OtlpRequest
    (encoded as fmt: "json" or "protobuf"). content_encoding compresses the body and sets the
    header. Returns the response without raising on HTTP errors."""
    if isinstance(body, OtlpRequest):
        if fmt == "json":
            data, ct = body.json_bytes(), CONTENT_TYPE_JSON
        elif fmt == "protobuf":
            data, ct = body.protobuf_bytes(), CONTENT_TYPE_PROTOBUF
        else:
            raise ValueError(f"fmt must be json or protobuf, not {fmt!r}")
    elif isinstance(body, dict):
        data, ct = json.dumps(body).encode(), CONTENT_TYPE_JSON
    else:
        data, ct = body, None
    ct = content_type or ct
    if ct is None:
        raise ValueError("content_type is required for a raw body")
    h = {"Content-Type": ct}
    if experiment_id is not None:
        h[EXPERIMENT_HEADER] = str(experiment_id)
    if content_encoding:
        h["Content-Encoding"] = content_encoding
    h.update(headers or {})
    with requests.Session() as s:
        s.trust_env = False
        return s.post(traces_endpoint(url), data=encode_body(data, content_encoding), headers=h,
                      timeout=timeout)


def parse_export_response(resp: requests.Response) -> ExportTraceServiceResponse:
    """The response body as an ExportTraceServiceResponse, decoded per its Content-Type.
    Raises ValueError when the body is neither valid protobuf nor valid OTLP-JSON."""
    msg = ExportTraceServiceResponse()
    ct = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ct == CONTENT_TYPE_JSON:
        json_format.Parse(resp.content or b"{}", msg)
    elif ct == CONTENT_TYPE_PROTOBUF:
        msg.ParseFromString(resp.content)  # raises DecodeError on an invalid body
    else:
        raise ValueError(f"unexpected response Content-Type {resp.headers.get('Content-Type')!r}; "
                         f"body {resp.content[:500]!r}")
    return msg
