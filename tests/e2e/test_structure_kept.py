"""The default policy keeps the structure of content (issue 18), end to end against a real MLflow,
with the real Koog agent (setVerbose(true)) and with the OpenTelemetry Python SDK, and no policy
configured: MLflow's chat spans read back (with the MLflow client) as lists of messages with the
roles the agent sent, tool calls show their tool names, every text leaf is masked, token usage and
span types are those of an unmasked run, and secrets planted in the user prompt (a key), the
system prompt (a URL with a password), the tool's arguments (an e-mail) and its result (a key)
are nowhere: not in MLflow's database files or artifacts, the trace read back, nor the proxy's
log. The secrets are fresh for each run, so other tests' traces in the shared MLflow cannot
match them."""
from __future__ import annotations

import json
import secrets
import string
from pathlib import Path

import pytest

from koog_runner import FINAL_ANSWER, SPAN_NAMES, TOOL, run_koog_agent
from support.masking import unmasked_leaves
from support.otel_clients import make_provider

WAIT = 60.0


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def planted() -> dict[str, str]:
    alnum = string.ascii_letters + string.digits
    return {
        "openai_key": "sk-proj-" + _random(alnum, 28),
        "db_password": "pw" + _random(alnum, 14),
        "email": f"{_random(string.ascii_lowercase, 10)}@corp-example.com",
        "aws_key": "AKIA" + _random(string.ascii_uppercase + string.digits, 16),
    }


def _parsed(value):
    return json.loads(value) if isinstance(value, str) and value.lstrip()[:1] in ("{", "[") else value


def stored_bytes(mlflow) -> bytes:
    """Every file MLflow keeps (its SQLite database with WAL, its artifacts)."""
    workdir = getattr(mlflow, "workdir", None)
    if workdir is None:
        pytest.skip("MLflow's files are not local (E2E_MLFLOW_URL)")
    return b"".join(p.read_bytes() for p in sorted(Path(workdir).rglob("*"))
                    if p.is_file() and not p.name.endswith(".log"))


def client_spans(mlflow, trace_id: str):
    """The trace's spans as the MLflow Python client returns them (inputs parsed by MLflow)."""
    from mlflow import MlflowClient
    return MlflowClient(tracking_uri=mlflow.url).get_trace(f"tr-{trace_id}").data.spans


def assert_nowhere(plants: dict[str, str], mlflow, proxy, trace_id: str) -> None:
    places = {
        "MLflow's database and artifacts": stored_bytes(mlflow).decode("latin-1"),
        "the trace read back": json.dumps(mlflow.get_trace_raw(trace_id)),
        "the proxy's log": proxy.log_path.read_text(errors="replace"),
    }
    for place, text in places.items():
        found = [name for name, secret in plants.items() if secret in text]
        assert not found, f"{found} found in {place}"


def assert_chat_inputs_are_messages(span, roles_sent: list[str]) -> list[dict]:
    messages = _parsed(span.inputs)
    assert isinstance(messages, list), f"{span.name} inputs: {span.inputs!r}"
    assert [m["role"] for m in messages] == roles_sent, messages
    assert not unmasked_leaves(messages), unmasked_leaves(messages)
    return messages


def tool_names(messages: list[dict]) -> set[str]:
    return {part.get("name") for m in messages for part in m.get("parts", [])
            if part.get("type") == "tool_call"}


def test_koog_agent_default_policy_keeps_messages_and_masks_every_leaf(
        mlflow, start_proxy, unique_name, koog_jar):
    plants = planted()
    masked_service, baseline_service = unique_name("koog-kept"), unique_name("koog-baseline")
    proxy = start_proxy(experiment_name=masked_service, config={"routes": [
        {"name": "baseline", "match": {"resource": {"service.name": baseline_service}},
         "policy": "verbose"}]})  # the same agent, unmasked: the usage and types to compare with
    masked = run_koog_agent(
        proxy, verbose=True, service_name=masked_service,
        prompt=f"What is the weather in Paris? My key is {plants['openai_key']}.",
        system_prompt=("You are the weather desk. Reports go to "
                       f"postgres://admin:{plants['db_password']}@db.internal:5432/app"),
        city=f"Paris, mail {plants['email']}, account {plants['aws_key']}")
    baseline = run_koog_agent(proxy, verbose=True, service_name=baseline_service)
    for run in (masked, baseline):
        assert run.returncode == 0 and run.all_exports_succeeded, f"{run.describe()}\n{proxy.describe()}"
        assert run.report["answer"] == FINAL_ANSWER
    got = mlflow.wait_for_spans(None, masked.trace_id, len(SPAN_NAMES), timeout=WAIT,
                                require_complete=True, diagnostics=proxy.describe)
    base = mlflow.wait_for_spans(None, baseline.trace_id, len(SPAN_NAMES), timeout=WAIT,
                                 require_complete=True, diagnostics=proxy.describe)

    spans = client_spans(mlflow, masked.trace_id)
    chats = sorted((s for s in spans if s.name.startswith("chat ")), key=lambda s: s.start_time_ns)
    assert len(chats) == 2
    base_chats = sorted((s for s in base.spans if s.name.startswith("chat ")),
                        key=lambda s: s.start_time_unix_nano)
    # The roles the agent sent, as the unmasked run stored them.
    for chat, sent in zip(chats, base_chats):
        roles = [m["role"] for m in _parsed(sent.attributes["gen_ai.input.messages"])]
        messages = assert_chat_inputs_are_messages(chat, roles)
        assert {"system", "user"} <= {r.lower() for r in roles}
    assert TOOL in tool_names(_parsed(chats[0].outputs)), chats[0].outputs
    assert TOOL in tool_names(messages)  # the second call's history holds the tool call
    tool = got.span(f"execute_tool {TOOL}")
    assert tool.attributes["gen_ai.tool.name"] == TOOL
    arguments = _parsed(tool.attributes["gen_ai.tool.call.arguments"])
    assert list(arguments) == ["city"] and not unmasked_leaves(arguments)

    def usage(trace):
        return sorted((s.attributes.get("gen_ai.usage.input_tokens"),
                       s.attributes.get("gen_ai.usage.output_tokens"))
                      for s in trace.spans if s.name.startswith("chat "))
    assert usage(got) == usage(base)
    assert sorted((s.name, s.span_type) for s in got.spans) == \
        sorted((s.name, s.span_type) for s in base.spans)
    # The trace list's request preview: the conversation's last user message, masked.
    request_preview = mlflow.get_trace_raw(masked.trace_id)["trace_info"].get("request_preview", "")
    assert "[masked: " in request_preview, request_preview

    assert_nowhere(plants, mlflow, proxy, masked.trace_id)


def send_python_sdk_chat(endpoint: str, plants: dict[str, str], service_name: str) -> str:
    """An agent instrumented by hand with the Python SDK: one chat call that asked for a tool,
    the tool's span, and a second chat call with the tool's answer."""
    provider, _, _ = make_provider(endpoint, service_name=service_name)
    tracer = provider.get_tracer("travel-assistant")
    system = f"Book trips. Use postgres://admin:{plants['db_password']}@db.internal/app"
    user = f"Fly me to Lisbon, my key is {plants['openai_key']}"
    arguments = {"traveller": plants["email"], "city": "Lisbon"}
    result = f"booked; billing account {plants['aws_key']}"
    history = [
        {"role": "system", "parts": [{"type": "text", "content": system}]},
        {"role": "user", "parts": [{"type": "text", "content": user}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "book_flight",
                                         "arguments": arguments}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": result}]},
    ]
    answer = [{"role": "assistant", "parts": [{"type": "text", "content": "Booked."}],
               "finish_reason": "stop"}]
    with tracer.start_as_current_span("invoke_agent travel", attributes={
            "gen_ai.operation.name": "invoke_agent"}) as root:
        for messages, output in ((history[:2], history[2:3]), (history, answer)):
            with tracer.start_as_current_span("chat gpt-4o", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 7,
                    "gen_ai.input.messages": json.dumps(messages),
                    "gen_ai.output.messages": json.dumps(output)}):
                pass
            if output is not answer:
                with tracer.start_as_current_span("execute_tool book_flight", attributes={
                        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "book_flight",
                        "gen_ai.tool.call.arguments": json.dumps(arguments),
                        "gen_ai.tool.call.result": result}):
                    pass
        trace_id = format(root.get_span_context().trace_id, "032x")
    assert provider.force_flush(30_000)
    provider.shutdown()
    return trace_id


def test_python_sdk_default_policy_keeps_messages_and_masks_every_leaf(mlflow, start_proxy,
                                                                       unique_name):
    plants = planted()
    name = unique_name("sdk-kept")
    proxy = start_proxy(experiment_name=name)
    trace_id = send_python_sdk_chat(proxy.url, plants, name)
    got = mlflow.wait_for_spans(None, trace_id, 4, timeout=WAIT, require_complete=True,
                                diagnostics=proxy.describe)
    spans = client_spans(mlflow, trace_id)
    chats = sorted((s for s in spans if s.name.startswith("chat ")), key=lambda s: s.start_time_ns)
    assert_chat_inputs_are_messages(chats[0], ["system", "user"])
    messages = assert_chat_inputs_are_messages(chats[1], ["system", "user", "assistant", "tool"])
    assert tool_names(messages) == {"book_flight"}
    assert messages[2]["parts"][0]["arguments"] == {"traveller": "[masked: 27 bytes]",
                                                   "city": "[masked: 6 bytes]"}
    assert messages[3]["parts"][0]["type"] == "tool_call_response"
    assert {s.name: s.span_type for s in got.spans}["chat gpt-4o"] == "CHAT_MODEL"
    assert all(s.attributes["gen_ai.usage.input_tokens"] == 120 for s in got.spans
               if s.name.startswith("chat "))
    assert_nowhere(plants, mlflow, proxy, trace_id)
