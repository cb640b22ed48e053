"""Helpers for the delivery and fault tests: numbered OTLP requests whose span ids say which
request they came from, a sender that records what the proxy acknowledged, spool file surgery,
and reading span ids back from MLflow."""
from __future__ import annotations

import http.client
import itertools
import os
import threading
import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_counter = itertools.count(1)
_prefix = os.getpid() & 0xFFFF


def numbered_request(spans: int = 3, payload_bytes: int = 0) -> tuple[ExportTraceServiceRequest, list[str]]:
    """One trace of `spans` spans with unique ids; returns the request and its span ids (hex)."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    attr = rs.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "fault-test"
    ss = rs.scope_spans.add()
    ss.scope.name = "fault-test"
    n = next(_counter)
    trace_id = ((_prefix << 64) | (int(time.time() * 1000) << 20) | n).to_bytes(16, "big")
    ids = []
    root_id = None
    for i in range(spans):
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = ((_prefix << 48) | (n << 8) | (i + 1)).to_bytes(8, "big")
        if root_id is not None:
            span.parent_span_id = root_id
        else:
            root_id = span.span_id
        span.name = f"request {n} span {i}"
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + i
        span.end_time_unix_nano = 1_700_000_001_000_000_000
        if payload_bytes:
            a = span.attributes.add()
            a.key, a.value.string_value = "padding", "x" * payload_bytes
        ids.append(span.span_id.hex())
    return request, ids


def post(url_host: str, port: int, body: bytes, timeout: float = 30.0,
         headers: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(url_host, port, timeout=timeout)
    try:
        conn.request("POST", "/v1/traces", body=body,
                     headers={"Content-Type": "application/x-protobuf", **(headers or {})})
        response = conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


class LoadSender:
    """Threads posting numbered requests to a proxy until stopped; remembers the span ids of
    every request answered 200 (acknowledged) and counts the rest."""

    def __init__(self, host: str, port: int, threads: int = 4, spans: int = 3,
                 payload_bytes: int = 0, pause: float = 0.0):
        self.host, self.port = host, port
        self.spans, self.payload_bytes, self.pause = spans, payload_bytes, pause
        self.acknowledged: list[str] = []
        self.statuses: dict[int | str, int] = {}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> "LoadSender":
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(40)

    def _run(self) -> None:
        while not self._stop.is_set():
            request, ids = numbered_request(self.spans, self.payload_bytes)
            try:
                status, _ = post(self.host, self.port, request.SerializeToString(), timeout=10)
            except OSError as e:
                status = type(e).__name__
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    self.acknowledged.extend(ids)
            if status != 200:
                time.sleep(0.05)
            elif self.pause:
                time.sleep(self.pause)


def segment_files(state_dir: Path) -> list[Path]:
    return sorted(Path(state_dir).glob("segment-*.spool"))


RECORD_MAGIC = b"OMPR"
RECORD_HEADER = 12
FILE_HEADER = 8


def record_offsets(data: bytes) -> list[tuple[int, int]]:
    """(offset, total length) of each framed record in a spool segment or dead-letter file."""
    out, pos = [], FILE_HEADER
    while pos + RECORD_HEADER <= len(data):
        assert data[pos:pos + 4] == RECORD_MAGIC, f"no record at {pos}"
        length = int.from_bytes(data[pos + 4:pos + 8], "little")
        out.append((pos, RECORD_HEADER + length))
        pos += RECORD_HEADER + length
    return out


def read_dead_letters(path: Path) -> list[dict]:
    """The dead-letter file's records: time_ms, status, experiment ("name:N" or "id:I"),
    may_create (a name its route may create), reason, span_count, request."""
    data = Path(path).read_bytes()
    assert data[:8] == b"OMPDLQ01", "not a dead-letter file"
    out = []
    for offset, total in record_offsets(data):
        body = data[offset + RECORD_HEADER:offset + total]
        pos = 0

        def take(n):
            nonlocal pos
            chunk = body[pos:pos + n]
            pos += n
            return chunk

        version = take(1)[0]
        time_ms = int.from_bytes(take(8), "little")
        status = int.from_bytes(take(2), "little")
        kind = take(1)[0]
        experiment = take(int.from_bytes(take(4), "little")).decode()
        reason = take(int.from_bytes(take(4), "little")).decode()
        span_count = int.from_bytes(take(4), "little")
        request = ExportTraceServiceRequest()
        request.ParseFromString(body[pos:])
        out.append({"version": version, "time_ms": time_ms, "status": status,
                    "experiment": ("name:" if kind in (1, 2) else "id:") + experiment,
                    "may_create": kind == 1,
                    "reason": reason, "span_count": span_count, "request": request})
    return out


def span_ids_of(request: ExportTraceServiceRequest) -> list[str]:
    return [s.span_id.hex() for rs in request.resource_spans for ss in rs.scope_spans
            for s in ss.spans]


def mlflow_span_ids(client, experiment_id: str) -> list[str]:
    """Every span id MLflow holds for the experiment (a list: duplicates would show)."""
    ids = []
    for trace_id in client.trace_ids(experiment_id):
        trace = client.get_trace(trace_id)
        ids.extend(s.span_id for s in (trace.spans if trace else []))
    return ids


AGENT_PROMPT = "Weather in Paris?"
AGENT_ANSWER = "Sunny."


def agent_trace(service: str) -> tuple[ExportTraceServiceRequest, ExportTraceServiceRequest, str]:
    """A Koog-shaped agent trace split as Koog's concurrent exports may deliver it root first:
    the root (create_agent, no inputs or outputs) alone, then invoke_agent (a user prompt, an
    answer, the conversation id), the strategy, the graph's __start__ and __finish__ nodes, and an
    LLM call without an operation name (a model, an end user, a token count sent as a string).
    Returns (the root's request, the other request, the root's span id in hex)."""
    n = next(_counter)
    trace_id = ((_prefix << 64) | (int(time.time() * 1000) << 20) | n).to_bytes(16, "big")

    def request() -> tuple[ExportTraceServiceRequest, object]:
        out = ExportTraceServiceRequest()
        rs = out.resource_spans.add()
        attr = rs.resource.attributes.add()
        attr.key, attr.value.string_value = "service.name", service
        ss = rs.scope_spans.add()
        ss.scope.name = service
        return out, ss

    def add(ss, i: int, name: str, attributes: dict, parent: bytes | None):
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = ((_prefix << 48) | (n << 8) | i).to_bytes(8, "big")
        if parent:
            span.parent_span_id = parent
        span.name = name
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + i
        span.end_time_unix_nano = 1_700_000_001_000_000_000 - i
        for key, value in attributes.items():
            a = span.attributes.add()
            a.key, a.value.string_value = key, value
        return span

    first, root_scope = request()
    root = add(root_scope, 1, "create_agent weather", {"gen_ai.operation.name": "create_agent"}, None)
    rest, ss = request()
    add(ss, 2, "invoke_agent weather", {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"%s"}]}]'
                                 % AGENT_PROMPT,
        "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"%s"}]}]'
                                  % AGENT_ANSWER,
        "gen_ai.conversation.id": "conversation-1"}, root.span_id)
    add(ss, 3, "strategy weather_strategy", {"koog.strategy.name": "weather_strategy"}, root.span_id)
    add(ss, 4, "node __start__", {"koog.node.id": "__start__",
                                  "koog.node.input": '"%s"' % AGENT_PROMPT}, root.span_id)
    add(ss, 5, "node __finish__", {"koog.node.id": "__finish__",
                                   "koog.node.output": '"%s"' % AGENT_ANSWER}, root.span_id)
    add(ss, 6, "llm call", {"gen_ai.request.model": "gpt-test", "enduser.id": "alice",
                            "gen_ai.usage.input_tokens": "12"}, root.span_id)
    return first, rest, root.span_id.hex()


def delivered_span(fake, span_id: str, timeout: float = 15.0):
    """(the span, the arrival time) once the fake MLflow has received span `span_id`."""
    from .net import wait_until

    def find():
        for export in fake.delivered():
            for rs in export.request.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        if span.span_id.hex() == span_id:
                            return span, export.time
        return None
    return wait_until(find, timeout, what=f"span {span_id} at the fake MLflow")


def span_attribute(span, key: str):
    """The attribute's value (an AnyValue), or None."""
    for attribute in span.attributes:
        if attribute.key == key:
            return attribute.value
    return None
