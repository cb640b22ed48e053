"""Saves real agent exports for `otlp-mlflow-proxy explain` and its tests (tests/data/otlp_protobuf/).

Points two real OTLP/HTTP exporters at a local capture endpoint (tests/support/fake_mlflow.py,
which keeps each request body as sent) and writes what they sent, byte for byte, as one protobuf
file per agent (several requests concatenated: serialized ExportTraceServiceRequests concatenate
into one valid request):

  python_sdk_trace.pb  the OpenTelemetry Python SDK's OTLPSpanExporter, a hand-instrumented
                       travel assistant following the GenAI semantic conventions: an agent
                       invocation, two chat calls, a tool call with a link, a failing tool call
                       with an exception event; planted secrets (a card number, an e-mail
                       address, a password in a URL) in prompts, tool arguments and errors.
  koog_agent_trace.pb  the real Koog agent of the end-to-end tests (tests/e2e/koog, Koog 1.0.0,
                       its mock LLM, setVerbose(true)), as tests/e2e/koog_runner.py runs it.

    ~/.cache/otlp-mlflow-proxy/venv/bin/python scripts/capture_traces.py tests/data/otlp_protobuf

Needs the test virtualenv (OpenTelemetry SDK) and, for Koog, java + mvn. Not part of the test
command: the saved files are the fixtures, this script says where they came from.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from opentelemetry.trace import Link, SpanKind, Status, StatusCode  # noqa: E402

from koog_runner import run_koog_agent  # noqa: E402
from support.fake_mlflow import FakeMlflow  # noqa: E402
from support.net import wait_until  # noqa: E402
from support.otel_clients import make_provider  # noqa: E402

USER_PROMPT = ("Book me a flight to Lisbon on 3 May. Pay with my card 4111 1111 1111 1111 and mail "
               "the ticket to ana.silva@example.com")
SYSTEM_PROMPT = ("You are a travel agent. Book through https://agent:Sup3rS3cret@booking.internal/api "
                 "and never reveal it.")
FAILURE = "payment gateway https://pay:hunter2@gw.internal/charge refused card 4111111111111111"


def messages(role: str, *parts: dict, finish_reason: str | None = None) -> dict:
    message = {"role": role, "parts": list(parts)}
    if finish_reason:
        message["finish_reason"] = finish_reason
    return message


def text(content: str) -> dict:
    return {"type": "text", "content": content}


def chat_attributes(inputs: list, outputs: list, tokens: tuple[int, int], reason: str) -> dict:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.usage.input_tokens": tokens[0],
        "gen_ai.usage.output_tokens": tokens[1],
        "gen_ai.response.finish_reasons": [reason],
        "gen_ai.system_instructions": json.dumps([text(SYSTEM_PROMPT)]),
        "gen_ai.input.messages": json.dumps(inputs),
        "gen_ai.output.messages": json.dumps(outputs),
    }


def python_sdk_trace(endpoint: str) -> None:
    """One run of the travel assistant, exported by the SDK's OTLP/HTTP protobuf exporter."""
    provider, recorder, _ = make_provider(
        endpoint, service_name="travel-assistant",
        resource={"service.version": "2.3.0", "deployment.environment.name": "staging"})
    tracer = provider.get_tracer("travel_assistant.agent", "2.3.0")
    user = messages("user", text(USER_PROMPT))
    call = {"type": "tool_call", "id": "call_a1", "name": "search_flights",
            "arguments": {"to": "LIS", "date": "2025-05-03", "email": "ana.silva@example.com"}}
    booked = "Booked TP 1351 to Lisbon on 3 May, 08:05; the ticket is on its way to your inbox."
    with tracer.start_as_current_span("invoke_agent travel-assistant", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "travel-assistant",
            "gen_ai.conversation.id": "conv-8c1f", "enduser.id": "user-4711",
            "gen_ai.input.messages": json.dumps([user]),
            "gen_ai.output.messages": json.dumps([messages("assistant", text(booked),
                                                           finish_reason="stop")])}):
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=chat_attributes(
                [user], [messages("assistant", call, finish_reason="tool_calls")], (412, 38),
                "tool_calls")) as chat:
            chat.add_event("gen_ai.user.message", attributes={"gen_ai.system": "openai",
                                                              "content": USER_PROMPT})
        cached = provider.get_tracer("travel_assistant.cache").start_span("cache lookup")
        cached.end()
        with tracer.start_as_current_span("execute_tool search_flights", links=[
                Link(cached.get_span_context(), {"link.reason": "cached fares", "cache.key": "LIS-0503"})],
                attributes={"gen_ai.operation.name": "execute_tool",
                            "gen_ai.tool.name": "search_flights", "gen_ai.tool.call.id": "call_a1",
                            "gen_ai.tool.call.arguments": json.dumps(call["arguments"]),
                            "gen_ai.tool.call.result": json.dumps(
                                [{"flight": "TP 1351", "departs": "08:05", "price_eur": 129}])}):
            pass
        with tracer.start_as_current_span("execute_tool book_flight", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "book_flight",
                "gen_ai.tool.call.id": "call_b2",
                "gen_ai.tool.call.arguments": json.dumps({"flight": "TP 1351",
                                                          "card": "4111 1111 1111 1111"})},
                record_exception=False, set_status_on_exception=False) as tool:
            tool.add_event("exception", attributes={"exception.type": "PaymentError",
                                                    "exception.message": FAILURE})
            tool.set_status(Status(StatusCode.ERROR, FAILURE))
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=chat_attributes(
                [user, messages("assistant", call),
                 {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_a1",
                                             "response": "TP 1351 08:05 129 EUR"}]}],
                [messages("assistant", text(booked), finish_reason="stop")], (530, 41), "stop")):
            pass
    if not provider.force_flush(30_000):
        raise RuntimeError("force_flush timed out")
    provider.shutdown()
    if recorder.results != ["SUCCESS"]:
        raise RuntimeError(f"export results: {recorder.results}")


def save(capture: FakeMlflow, path: Path) -> None:
    bodies = [export.body for export in capture.delivered()]
    path.write_bytes(b"".join(bodies))
    spans = sum(len(export.span_ids()) for export in capture.delivered())
    print(f"{path}: {len(bodies)} requests, {spans} spans, {path.stat().st_size} bytes")
    with capture.lock:
        capture.exports.clear()


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "tests" / "data" / "otlp_protobuf")
    out.mkdir(parents=True, exist_ok=True)
    capture = FakeMlflow().start()
    try:
        python_sdk_trace(capture.url)
        save(capture, out / "python_sdk_trace.pb")
        run = run_koog_agent(capture.url, verbose=True, service_name="koog-weather-agent")
        wait_until(lambda: len(capture.delivered_span_ids()) >= run.span_count, 30,
                   what="the Koog agent's spans")
        save(capture, out / "koog_agent_trace.pb")
    finally:
        capture.stop()


if __name__ == "__main__":
    main()
