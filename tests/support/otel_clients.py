"""Sending traces with the real OpenTelemetry Python SDK (OTLP/HTTP protobuf exporter).

`send_koog_trace` builds the span tree a Koog agent emits:

    create_agent <agent>                  root (gen_ai.operation.name=create_agent)
    └── invoke_agent <agent>
        └── strategy <strategy>
            └── node <node>               koog.node.id / koog.node.input / koog.node.output
                ├── chat <model>          CLIENT kind, status OK, tokens, messages, event gen_ai.choice
                └── execute_tool <tool>   status ERROR with a message, an exception event, and one
                                          attribute of each type (int, float, bool, string list, int list)

The returned `SentTrace` is built from the SDK's own finished spans (an in-memory exporter runs
beside the OTLP one), so it describes exactly what went over the wire.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Sequence

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (BatchSpanProcessor, SimpleSpanProcessor,
                                            SpanExporter, SpanExportResult)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from .mlflow_server import MlflowSpan, MlflowTrace, expected_mlflow_value

EXPERIMENT_HEADER = "x-mlflow-experiment-id"


@dataclass
class SentEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass
class SentSpan:
    name: str
    span_id: str  # 16 hex
    parent_span_id: str | None  # 16 hex
    kind: str  # INTERNAL, CLIENT, ...
    attributes: dict[str, Any]  # as the SDK holds them (sequences are tuples)
    status_code: str  # UNSET, OK, ERROR
    status_message: str
    events: list[SentEvent]
    start_time_unix_nano: int
    end_time_unix_nano: int


@dataclass
class SentTrace:
    trace_id: str  # 32 hex
    spans: dict[str, SentSpan]  # by span name
    export_results: list[str] = field(default_factory=list)  # one per exporter call
    resource: dict[str, Any] = field(default_factory=dict)

    @property
    def mlflow_trace_id(self) -> str:
        return "tr-" + self.trace_id

    @property
    def span_count(self) -> int:
        return len(self.spans)

    @property
    def all_exports_succeeded(self) -> bool:
        return bool(self.export_results) and all(r == "SUCCESS" for r in self.export_results)


def _hex_span(span_id: int | None) -> str | None:
    return None if not span_id else format(span_id, "016x")


def describe_span(s: ReadableSpan) -> SentSpan:
    return SentSpan(
        name=s.name,
        span_id=_hex_span(s.context.span_id),
        parent_span_id=_hex_span(s.parent.span_id) if s.parent else None,
        kind=s.kind.name,
        attributes=dict(s.attributes or {}),
        status_code=s.status.status_code.name,
        status_message=s.status.description or "",
        events=[SentEvent(e.name, e.timestamp, dict(e.attributes or {})) for e in s.events],
        start_time_unix_nano=s.start_time,
        end_time_unix_nano=s.end_time,
    )


class RecordingExporter(SpanExporter):
    """Wraps the OTLP exporter and records each export result (the SDK only logs failures)."""

    def __init__(self, delegate: SpanExporter):
        self.delegate = delegate
        self.results: list[str] = []
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.delegate.export(spans)
        with self._lock:
            self.results.append(result.name)
        return result

    def shutdown(self) -> None:
        self.delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.delegate.force_flush(timeout_millis)


def traces_endpoint(base_url: str) -> str:
    """<base>/v1/traces unless base_url already ends with it."""
    base = base_url.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def make_exporter(endpoint: str, *, headers: dict[str, str], compression: str | None,
                  timeout: float, protocol: str = "http/protobuf") -> SpanExporter:
    """The SDK's OTLP exporter. http/protobuf: endpoint is a base URL (or .../v1/traces).
    grpc: endpoint is host:port (or http://host:port), plaintext."""
    if protocol == "http/protobuf":
        comp = {None: Compression.NoCompression, "none": Compression.NoCompression,
                "gzip": Compression.Gzip, "deflate": Compression.Deflate}[compression]
        return OTLPSpanExporter(endpoint=traces_endpoint(endpoint), headers=headers,
                                compression=comp, timeout=timeout)
    if protocol == "grpc":
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import \
            OTLPSpanExporter as GrpcSpanExporter
        comp = {None: grpc.Compression.NoCompression, "none": grpc.Compression.NoCompression,
                "gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}[compression]
        target = endpoint.removeprefix("http://").rstrip("/")
        return GrpcSpanExporter(endpoint=target, insecure=True, headers=headers,
                                compression=comp, timeout=timeout)
    raise ValueError(f"protocol must be http/protobuf or grpc, not {protocol!r}")


def make_provider(endpoint: str, *, experiment_id: str | None = None,
                  headers: dict[str, str] | None = None, compression: str | None = None,
                  service_name: str = "koog-e2e-agent", resource: dict[str, Any] | None = None,
                  processor: str = "batch", timeout: float = 30.0,
                  protocol: str = "http/protobuf"):
    """A TracerProvider exporting over OTLP to endpoint: for http/protobuf <proxy or mlflow>
    (/v1/traces appended), for grpc host:port.

    compression: None/"none" or "gzip" (or "deflate"). processor: "batch" (one request on flush,
    as Koog 1.x) or "simple" (one request per span as it ends, as Koog before 1.0).
    Returns (provider, recording exporter, in-memory exporter)."""
    all_headers = dict(headers or {})
    if experiment_id is not None:
        all_headers[EXPERIMENT_HEADER] = str(experiment_id)
    otlp = make_exporter(endpoint, headers=all_headers, compression=compression,
                         timeout=timeout, protocol=protocol)
    recorder = RecordingExporter(otlp)
    memory = InMemorySpanExporter()
    res = {"service.name": service_name, **(resource or {})}
    provider = TracerProvider(resource=Resource.create(res))
    if processor == "batch":
        provider.add_span_processor(BatchSpanProcessor(recorder, schedule_delay_millis=60_000,
                                                       max_export_batch_size=512))
    elif processor == "simple":
        provider.add_span_processor(SimpleSpanProcessor(recorder))
    else:
        raise ValueError(f"processor must be batch or simple, not {processor!r}")
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, recorder, memory


# Content set on the spans; tests compare against the SentTrace rather than these constants.
INPUT_MESSAGES = [{"role": "user", "parts": [{"type": "text", "content": "What is 6 * 7?"}]}]
OUTPUT_MESSAGES = [{"role": "assistant", "parts": [
    {"type": "tool_call", "id": "call_1", "name": "calculator",
     "arguments": {"expression": "6 * 7"}}]}]
ERROR_MESSAGE = "Tool calculator failed: division by zero"


def send_koog_trace(endpoint: str, *, experiment_id: str | None = None,
                    headers: dict[str, str] | None = None, compression: str | None = None,
                    agent: str = "math-agent", strategy: str = "single_run",
                    node: str = "nodeCallLLM", model: str = "gpt-4o", tool: str = "calculator",
                    service_name: str = "koog-e2e-agent", resource: dict[str, Any] | None = None,
                    processor: str = "batch", timeout: float = 30.0,
                    protocol: str = "http/protobuf") -> SentTrace:
    """Emits one Koog-shaped trace (6 spans) and flushes it to endpoint; see the module doc.
    protocol: "http/protobuf" (endpoint a base URL) or "grpc" (endpoint host:port)."""
    provider, recorder, memory = make_provider(
        endpoint, experiment_id=experiment_id, headers=headers, compression=compression,
        service_name=service_name, resource=resource, processor=processor, timeout=timeout,
        protocol=protocol)
    tracer = provider.get_tracer("ai.koog.agents.features.opentelemetry", "0.5.0")
    try:
        with tracer.start_as_current_span(f"create_agent {agent}", attributes={
                "gen_ai.operation.name": "create_agent",
                "gen_ai.system": "openai",
                "gen_ai.agent.id": f"{agent}-id",
                "gen_ai.agent.name": agent,
                "gen_ai.request.model": model}) as root:
            with tracer.start_as_current_span(f"invoke_agent {agent}", attributes={
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.id": f"{agent}-id",
                    "gen_ai.agent.name": agent,
                    "gen_ai.conversation.id": "run-1"}):
                with tracer.start_as_current_span(f"strategy {strategy}", attributes={
                        "koog.strategy.name": strategy,
                        "koog.event.id": "evt-strategy-1"}):
                    with tracer.start_as_current_span(f"node {node}", attributes={
                            "koog.node.id": node,
                            "koog.node.input": "What is 6 * 7?",
                            "koog.node.output": "The answer is 42."}):
                        with tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT,
                                                          attributes={
                                "gen_ai.operation.name": "chat",
                                "gen_ai.system": "openai",
                                "gen_ai.request.model": model,
                                "gen_ai.response.model": model,
                                "gen_ai.request.temperature": 0.2,
                                "gen_ai.usage.input_tokens": 12,
                                "gen_ai.usage.output_tokens": 34,
                                "gen_ai.response.finish_reasons": ["tool_calls"],
                                "gen_ai.input.messages": json.dumps(INPUT_MESSAGES),
                                "gen_ai.output.messages": json.dumps(OUTPUT_MESSAGES)}) as chat:
                            chat.add_event("gen_ai.choice", attributes={
                                "index": 0, "finish_reason": "tool_calls"})
                            chat.set_status(Status(StatusCode.OK))
                        with tracer.start_as_current_span(f"execute_tool {tool}", attributes={
                                "gen_ai.operation.name": "execute_tool",
                                "gen_ai.tool.name": tool,
                                "gen_ai.tool.call.id": "call_1",
                                "gen_ai.tool.call.arguments": json.dumps({"expression": "6 * 7"}),
                                "gen_ai.tool.call.result": "42",
                                "koog.tool.attempts": 3,             # int
                                "koog.tool.duration_seconds": 0.125,  # float
                                "koog.tool.cached": False,           # bool
                                "koog.tool.tags": ["math", "safe"],  # list of strings
                                "koog.tool.codes": [7, 8, 9]},        # list of ints
                                record_exception=False, set_status_on_exception=False) as t:
                            t.add_event("exception", attributes={
                                "exception.type": "java.lang.ArithmeticException",
                                "exception.message": "division by zero"})
                            t.set_status(Status(StatusCode.ERROR, ERROR_MESSAGE))
        trace_id = format(root.get_span_context().trace_id, "032x")
        if not provider.force_flush(int(timeout * 3 * 1000)):
            raise RuntimeError("TracerProvider.force_flush timed out")
    finally:
        provider.shutdown()
    spans = {s.name: describe_span(s) for s in memory.get_finished_spans()}
    return SentTrace(trace_id=trace_id, spans=spans, export_results=list(recorder.results),
                     resource={"service.name": service_name, **(resource or {})})


# --------------------------------------------------------------------------------------------
# Comparison against what MLflow returned
# --------------------------------------------------------------------------------------------

def compare_trace(sent: SentTrace, got: MlflowTrace, *, check_events: bool = True,
                  check_status: bool = True, attribute_overrides: dict | None = None) -> list[str]:
    """Differences between what was sent and what MLflow holds, span by span (empty: equal).

    Checks the trace id, span count, names, span ids, parent links, every sent attribute (value
    and type, after MLflow's documented JSON rule, see expected_mlflow_value), status code and
    message, and events (name and attributes). attribute_overrides: {span name: {key: expected}}
    for attributes a policy is expected to change (use ... to expect the key absent)."""
    problems: list[str] = []
    if got.trace_id_hex != sent.trace_id:
        problems.append(f"trace id: sent {sent.trace_id}, MLflow has {got.trace_id}")
    got_names = sorted(s.name for s in got.spans)
    if got_names != sorted(sent.spans):
        problems.append(f"span names: sent {sorted(sent.spans)}, MLflow has {got_names}")
    by_name = {}
    for s in got.spans:
        by_name.setdefault(s.name, []).append(s)
    for name, want in sent.spans.items():
        have_list = by_name.get(name, [])
        if len(have_list) != 1:
            continue  # reported above
        problems.extend(f"span {name!r}: {p}" for p in compare_span(
            want, have_list[0], check_events=check_events, check_status=check_status,
            overrides=(attribute_overrides or {}).get(name)))
    return problems


def compare_span(want: SentSpan, have: MlflowSpan, *, check_events: bool = True,
                 check_status: bool = True, overrides: dict | None = None) -> list[str]:
    problems = []
    if have.span_id != want.span_id:
        problems.append(f"span id: sent {want.span_id}, got {have.span_id}")
    if have.parent_span_id != want.parent_span_id:
        problems.append(f"parent: sent {want.parent_span_id}, got {have.parent_span_id}")
    if (have.start_time_unix_nano, have.end_time_unix_nano) != \
            (want.start_time_unix_nano, want.end_time_unix_nano):
        problems.append(f"times: sent {want.start_time_unix_nano}..{want.end_time_unix_nano}, "
                        f"got {have.start_time_unix_nano}..{have.end_time_unix_nano}")
    rule = have.parses_json_strings
    expected_attrs = {k: expected_mlflow_value(v, rule) for k, v in want.attributes.items()}
    for k, v in (overrides or {}).items():
        if v is ...:
            expected_attrs.pop(k, None)
            if k in have.attributes:
                problems.append(f"attribute {k!r} should be absent, got {have.attributes[k]!r}")
        else:
            expected_attrs[k] = v
    for k, v in expected_attrs.items():
        if k not in have.attributes:
            problems.append(f"attribute {k!r} missing (sent {v!r})")
        elif not _same(have.attributes[k], v):
            problems.append(f"attribute {k!r}: expected {v!r} ({type(v).__name__}), "
                            f"got {have.attributes[k]!r} ({type(have.attributes[k]).__name__})")
    if check_status:
        if have.status_code != want.status_code:
            problems.append(f"status code: sent {want.status_code}, got {have.status_code}")
        if have.status_message != want.status_message:
            problems.append(f"status message: sent {want.status_message!r}, "
                            f"got {have.status_message!r}")
    if check_events:
        want_ev = [(e.name, {k: expected_mlflow_value(v, rule) for k, v in e.attributes.items()})
                   for e in want.events]
        have_ev = [(e.name, e.attributes) for e in have.events]
        if not _same(have_ev, want_ev):
            problems.append(f"events: sent {want_ev!r}, got {have_ev!r}")
    return problems


def _same(a: Any, b: Any) -> bool:
    """Equality that also requires the same JSON-ish type (True != 1, 1 != 1.0)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    return a == b


def assert_trace_matches(sent: SentTrace, got: MlflowTrace, **kwargs) -> None:
    problems = compare_trace(sent, got, **kwargs)
    if problems:
        raise AssertionError("MLflow's trace differs from what was sent:\n  - "
                             + "\n  - ".join(problems) + "\nMLflow returned:\n" + got.dump())


def send_span_per_export(exporter: SpanExporter, *, threads: int = 3, spans_per_thread: int = 8,
                         padding_bytes: int = 1500,
                         tracer_name: str = "span-per-export") -> tuple[list[str], list[str]]:
    """Spans from `threads` threads through a SimpleSpanProcessor (one export per span, as old
    Koog does), each with `padding_bytes` of padding; returns the span ids and every export's
    result name, after provider.shutdown() has waited for the SDK's retries."""
    recording = RecordingExporter(exporter)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(recording))
    tracer = provider.get_tracer(tracer_name)
    span_ids: list[str] = []

    def produce():
        for i in range(spans_per_thread):
            with tracer.start_as_current_span(f"sdk span {i}") as span:
                span.set_attribute("padding", "y" * padding_bytes)
                span_ids.append(format(span.get_span_context().span_id, "016x"))

    producers = [threading.Thread(target=produce) for _ in range(threads)]
    for t in producers:
        t.start()
    for t in producers:
        t.join(120)
    provider.shutdown()
    return span_ids, recording.results
