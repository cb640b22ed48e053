"""End to end: normalization (issue 10) with the real Koog agent and a real MLflow server.

Koog 1.0.0's trace (see koog_runner.py) as MLflow stores it without the proxy's normalization:
strategy and node spans have no span type, node spans no inputs/outputs (koog.node.* means
nothing to MLflow), and the trace list's request/response preview is empty (MLflow takes it
from the root span, create_agent, which has no inputs or outputs). With normalization on (the
default), the same run must show: a span type on every span, node inputs/outputs (masked when
the policy masks), service.name on the spans, the session from gen_ai.conversation.id, and a
request and response preview. test_without_normalization_mlflow_shows_less runs the same agent
with `normalize: {enabled: false}` so the difference is measured, not assumed.

Also: OTLP logs and metrics posted to the proxy are answered 200 (clients configured with a base
endpoint send them next to traces; MLflow has no such endpoint).
"""
from __future__ import annotations

import json
import urllib.request

import pytest

from koog_runner import AGENT_ID, DEFAULT_PROMPT, FINAL_ANSWER, SPAN_NAMES, run_koog_agent
from support.masking import unmasked_leaves

WAIT = 60.0
VERBOSE = {"default_route": {"policy": "verbose"}}
OFF = {"default_route": {"policy": "verbose", "normalize": {"enabled": False}}}
SESSION_KEY = "mlflow.trace.session"


def _run(mlflow, start_proxy, unique_name, *, verbose: bool, config: dict | None):
    name = unique_name("norm")
    proxy = start_proxy(experiment_name=name, **({"config": config} if config else {}))
    run = run_koog_agent(proxy, verbose=verbose, service_name=name)
    assert run.returncode == 0 and run.all_exports_succeeded, (
        f"{run.describe()}\n{proxy.describe()}")
    got = mlflow.wait_for_spans(None, run.trace_id, len(SPAN_NAMES), timeout=WAIT,
                                require_complete=True, diagnostics=proxy.describe)
    infos = mlflow.search_traces(got.experiment_id)
    assert len(infos) == 1, infos
    return name, run, got, infos[0]


def _kind(span) -> str:
    return span.name.split(" ", 1)[0]


def _preview(info: dict, key: str) -> str:
    return info.get(key) or ""


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _version(mlflow) -> tuple[int, ...]:
    return tuple(int(p) for p in mlflow.version().split(".")[:2] if p.isdigit())


def _sessions_from_spans(mlflow) -> bool:
    """MLflow 3.6 sets no session from span attributes at all (neither session.id nor
    gen_ai.conversation.id; checked in its sqlalchemy_store.log_spans); 3.17 reads both.
    Versions in between were not checked."""
    return _version(mlflow) >= (3, 7)


def _conversation_id(got) -> str:
    return got.span(f"invoke_agent {AGENT_ID}").attributes["gen_ai.conversation.id"]


@pytest.mark.mlflow36
def test_koog_trace_is_first_class_in_mlflow(mlflow, start_proxy, unique_name, koog_jar):
    name, run, got, info = _run(mlflow, start_proxy, unique_name, verbose=True, config=VERBOSE)

    # every span has a type: MLflow's own for chat/tool/agents, the proxy's for the rest
    types = {s.name: s.span_type for s in got.spans}
    assert all(t not in (None, "UNKNOWN") for t in types.values()), types
    assert types["strategy weather_strategy"] == "CHAIN", types
    assert all(t == "CHAIN" for n, t in types.items() if n.startswith("node ")), types
    assert types[f"create_agent {AGENT_ID}"] == "AGENT"
    assert types[f"invoke_agent {AGENT_ID}"] == "AGENT"

    # node spans show inputs and outputs (Koog's JSON as structure: the text, not a quoted string)
    for s in got.spans:
        if _kind(s) == "node":
            assert "mlflow.spanInputs" in s.attributes, (s.name, s.attributes)
            assert "mlflow.spanOutputs" in s.attributes, (s.name, s.attributes)
    assert got.span("node __start__").attributes["mlflow.spanInputs"] == DEFAULT_PROMPT
    assert got.span("node __finish__").attributes["mlflow.spanOutputs"] == FINAL_ANSWER

    # resource, kind and scope visible on the spans
    root = got.span(f"create_agent {AGENT_ID}")
    for s in got.spans:
        assert s.attributes.get("service.name") == name, (s.name, s.attributes)
        assert s.attributes.get("telemetry.sdk.language") == "kotlin"
        assert s.attributes.get("otel.span.kind") in ("INTERNAL", "CLIENT"), s.attributes
    assert root.attributes.get("otel.scope.name") == name  # Koog names its tracer after the service

    # the session comes from gen_ai.conversation.id
    conversation = _conversation_id(got)
    assert conversation
    if _sessions_from_spans(mlflow):
        assert got.metadata.get(SESSION_KEY) == conversation, got.metadata
    assert root.attributes.get("session.id") is None  # the root carries no conversation id
    assert got.span("node call_llm").attributes["session.id"] == conversation

    # the trace list shows a request and a response: the user's prompt and the agent's answer
    # (Koog's __start__/__finish__ nodes). Koog's batch processor sends its exports concurrently;
    # when the request with the root is handled before the one with invoke_agent and the nodes,
    # the proxy holds the root (normalize.preview_hold) until they arrive, so the preview is the
    # prompt and the answer whichever request comes first.
    request, response = _preview(info, "request_preview"), _preview(info, "response_preview")
    assert DEFAULT_PROMPT in request, info
    assert FINAL_ANSWER in response, info
    assert "mlflow.spanInputs" in root.attributes and "mlflow.spanOutputs" in root.attributes


@pytest.mark.mlflow36
def test_normalization_never_unmasks(mlflow, start_proxy, unique_name, koog_jar):
    """Koog verbose, the proxy's default policy masks content: what normalization copies (node
    inputs/outputs, the root's preview) is masked (whole, or leaf by leaf with its structure
    kept), and no content reaches MLflow."""
    _, run, got, info = _run(mlflow, start_proxy, unique_name, verbose=True, config=None)
    for s in got.spans:
        if _kind(s) == "node":
            assert not unmasked_leaves(s.attributes["mlflow.spanInputs"]), s.attributes
            assert not unmasked_leaves(s.attributes["mlflow.spanOutputs"]), s.attributes
        assert s.span_type not in (None, "UNKNOWN"), (s.name, s.attributes)
    assert "[masked: " in _preview(info, "request_preview"), info
    assert "[masked: " in _preview(info, "response_preview"), info
    everything = json.dumps(got.raw) + json.dumps(info)
    for text in (DEFAULT_PROMPT, FINAL_ANSWER, "Paris"):
        assert text not in everything, f"{text!r} reached MLflow: {got.dump()}"
    if _sessions_from_spans(mlflow):
        assert got.metadata.get(SESSION_KEY) == _conversation_id(got)


def test_without_normalization_mlflow_shows_less(mlflow, start_proxy, unique_name, koog_jar):
    """The "before": normalize: {enabled: false}. What MLflow derives by itself from Koog's spans;
    each assertion is something the test above shows the proxy adds."""
    _, run, got, info = _run(mlflow, start_proxy, unique_name, verbose=True, config=OFF)
    types = {s.name: s.span_type for s in got.spans}
    untyped = sorted(n for n, t in types.items() if t in (None, "UNKNOWN"))
    assert "strategy weather_strategy" in untyped and "node call_llm" in untyped, types
    for s in got.spans:
        if _kind(s) == "node":
            assert "mlflow.spanInputs" not in s.attributes, s.attributes
        assert "service.name" not in s.attributes, s.attributes
    assert not _preview(info, "request_preview"), info
    assert not _preview(info, "response_preview"), info


def test_otlp_logs_and_metrics_are_answered_200(start_proxy):
    proxy = start_proxy()
    for path, content_type, body, expected in (
            ("/v1/logs", "application/x-protobuf", b"\x0a\x00", b""),
            ("/v1/metrics", "application/json", b'{"resourceMetrics":[]}', b"{}")):
        request = urllib.request.Request(proxy.url + path, data=body, method="POST",
                                         headers={"Content-Type": content_type})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == content_type
            assert response.read() == expected
