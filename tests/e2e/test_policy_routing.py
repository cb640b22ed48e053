"""End to end: policy and routing through a real MLflow server.

One OTLP request carries two services' traces full of planted secrets and prompts. Rules on
`service.name` route team A through a masking policy and team B through a redacting one, each to
an experiment the proxy creates by name. The traces are read back through MLflow's REST API and
the WHOLE stored JSON (trace, spans, metadata, previews, search results) is searched for every
planted secret, not only the keys we expect them in; non-content attributes, token usage, span
types and the span tree must come through intact.
"""
from __future__ import annotations

import json
import time

import pytest

from support.otel_clients import send_koog_trace
from support.otlp_json import (SPAN_KIND, STATUS_CODE, key_values, post_otlp, random_span_id,
                               random_trace_id, to_protobuf)

WAIT = 30.0

GITHUB_TOKEN = "ghp_" + "R8x2Kq9LmZ4vT7bW1nC6" + "yH3jP5sD0fG8aE2uI4oQ"
GOOGLE_KEY = "AIza" + "SyB7-kQ9xL2mZ4vT8bW1nC6yH3jP5sD0fG8"
SECRETS = {
    "openai": "sk-proj-Q3xT9vLm2RkP8wZc4NbY7dHfJ6",
    "anthropic": "sk-ant-api03-Xy7_Qm2RkP8wZc4NbY7dHfJ6uV",
    "aws": "AKIAZ7QW3ERT5YUI9OPL",
    "github": GITHUB_TOKEN,
    "google": GOOGLE_KEY,
    "bearer": "tok_9f8e7d6c5b4a3f2e1d0c",
    "url_password": "Pa55w0rdXyZ",
    "email": "jane.doe@corp-example.com",
    "card": "4539 1488 0343 6467",
    "card_digits": "4539148803436467",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
}
PROMPT_WORDS = "Summarize the quarterly report for the board"  # content that is not a secret


def _secret_prompt(team: str) -> str:
    """A GenAI-sized prompt (over 1 KB) with every secret planted in realistic places."""
    s = SECRETS
    lines = [
        f"{PROMPT_WORDS} ({team}).",
        f"Use the OpenAI key {s['openai']} or the Anthropic key {s['anthropic']}.",
        f"AWS access key id: {s['aws']}; GitHub token {s['github']}; Maps key {s['google']}.",
        f"Call the API with header Authorization: Bearer {s['bearer']}.",
        f"The database is at postgres://reporter:{s['url_password']}@db.internal:5432/finance.",
        f"Send the result to {s['email']} and charge card {s['card']} (or {s['card_digits']}).",
        f"Session token {s['jwt']}.",
    ]
    filler = " ".join(["The report covers revenue, costs, hiring and the outlook."] * 12)
    return "\n".join(lines + [filler])


def _messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def secret_resource_spans(service: str, team: str) -> tuple[dict, str]:
    """One agent trace (invoke_agent > chat, execute_tool) as OTLP-JSON ResourceSpans."""
    trace_id = random_trace_id()
    root, chat, tool = random_span_id(), random_span_id(), random_span_id()
    prompt = _secret_prompt(team)
    t0 = 1_700_000_000_000_000_000
    span = lambda sid, parent, name, kind, start, end, attrs, **kw: {  # noqa: E731
        "traceId": trace_id, "spanId": sid, **({"parentSpanId": parent} if parent else {}),
        "name": name, "kind": kind, "startTimeUnixNano": str(t0 + start),
        "endTimeUnixNano": str(t0 + end), "attributes": key_values(attrs), **kw}
    spans = [
        span(root, None, "invoke_agent report-agent", SPAN_KIND["INTERNAL"], 0, 9_000_000, {
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "report-agent",
            "koog.node.input": prompt, "koog.node.output": f"Mailed {SECRETS['email']}",
            "gen_ai.system_instructions": f"You may use {SECRETS['openai']}"},
            status={"code": STATUS_CODE["OK"]}),
        span(chat, root, "chat gpt-4o", SPAN_KIND["CLIENT"], 1_000_000, 4_000_000, {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 34,
            "gen_ai.input.messages": _messages("user", prompt),
            "gen_ai.output.messages": _messages("assistant", f"Done; card {SECRETS['card']}"),
            "input.value": prompt, "llm.input_messages.0.message.content": prompt},
            events=[{"timeUnixNano": str(t0 + 2_000_000), "name": "gen_ai.user.message",
                     "attributes": key_values({"role": "user", "content": prompt})}],
            status={"code": STATUS_CODE["OK"]}),
        span(tool, root, "execute_tool http_get", SPAN_KIND["INTERNAL"], 5_000_000, 8_000_000, {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "http_get",
            "gen_ai.tool.call.id": "call_7",
            "gen_ai.tool.call.arguments": json.dumps(
                {"url": f"https://svc:{SECRETS['url_password']}@api.example.com/x",
                 "headers": {"Authorization": f"Bearer {SECRETS['bearer']}"}}),
            "gen_ai.tool.call.result": f"{{\"owner\": \"{SECRETS['email']}\", \"aws\": \"{SECRETS['aws']}\"}}",
            "koog.tool.attempts": 2},
            events=[{"timeUnixNano": str(t0 + 6_000_000), "name": "exception",
                     "attributes": key_values({
                         "exception.type": "java.io.IOException",
                         "exception.message": f"401 for key {SECRETS['github']}",
                         "exception.stacktrace": f"at Client.call(key={SECRETS['google']})"})}],
            status={"code": STATUS_CODE["ERROR"],
                    "message": f"HTTP 401: Authorization: Bearer {SECRETS['bearer']} rejected "
                               f"for {SECRETS['email']}"}),
    ]
    resource_spans = {
        "resource": {"attributes": key_values({"service.name": service, "team": team})},
        "scopeSpans": [{"scope": {"name": "ai.koog.agents.features.opentelemetry"},
                        "spans": spans}]}
    return resource_spans, trace_id


def _assert_no_secret(what: str, text: str) -> None:
    leaked = [name for name, secret in SECRETS.items() if secret in text]
    assert not leaked, f"{what} leaks {leaked}:\n{text[:4000]}"


def _assert_structure_intact(got) -> None:
    names = sorted(s.name for s in got.spans)
    assert names == ["chat gpt-4o", "execute_tool http_get", "invoke_agent report-agent"], got.dump()
    root = got.span("invoke_agent report-agent")
    assert got.span("chat gpt-4o").parent_span_id == root.span_id
    assert got.span("execute_tool http_get").parent_span_id == root.span_id
    types = {s.name: s.span_type for s in got.spans}
    assert types["chat gpt-4o"] == "CHAT_MODEL", got.dump()
    assert types["execute_tool http_get"] == "TOOL", got.dump()
    chat = got.span("chat gpt-4o")
    assert chat.attributes["gen_ai.request.model"] == "gpt-4o"
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    tool = got.span("execute_tool http_get")
    assert tool.attributes["gen_ai.tool.call.id"] == "call_7"
    assert tool.attributes["koog.tool.attempts"] == 2
    usage = got.metadata.get("mlflow.trace.tokenUsage")
    assert usage and '"input_tokens": 12' in usage and '"output_tokens": 34' in usage, got.dump()


def _stored(mlflow, experiment_id: str, trace_id: str, proxy) -> tuple:
    got = mlflow.wait_for_spans(experiment_id, trace_id, 3, timeout=WAIT, require_complete=True,
                                diagnostics=proxy.describe)
    raw = json.dumps(mlflow.get_trace_raw(trace_id))
    searched = json.dumps(mlflow.search_traces(experiment_id))
    return got, raw, searched


def test_two_teams_masked_and_redacted_in_experiments_created_by_name(mlflow, start_proxy,
                                                                       unique_name):
    exp_a, exp_b = unique_name("team-a"), unique_name("team-b")
    proxy = start_proxy(config={
        "policies": {"team-b-redact": {"content": "redact"}},
        "routes": [
            {"name": "team-a", "match": {"resource": {"service.name": "team-a-agent"}},
             "experiment_name": exp_a, "policy": "mask"},
            {"name": "team-b", "match": {"resource": {"service.name": {"glob": "team-b-*"}}},
             "experiment_name": exp_b, "policy": "team-b-redact"},
        ],
    })
    rs_a, trace_a = secret_resource_spans("team-a-agent", "A")
    rs_b, trace_b = secret_resource_spans("team-b-agent", "B")
    body = {"resourceSpans": [rs_a, rs_b]}
    resp = post_otlp(proxy.url, to_protobuf(body), content_type="application/x-protobuf")
    assert resp.status_code == 200, f"HTTP {resp.status_code}: {resp.content!r}\n{proxy.describe()}"

    ids = {}
    for name in (exp_a, exp_b):
        exp = None
        for _ in range(int(WAIT * 4)):
            exp = mlflow.get_experiment_by_name(name)
            if exp:
                break
            time.sleep(0.25)
        assert exp is not None, f"the proxy did not create experiment {name!r}\n{proxy.describe()}"
        ids[name] = exp["experiment_id"]
    assert ids[exp_a] != ids[exp_b]

    # Team A: masked. Every content value says only its size; nothing secret anywhere.
    got_a, raw_a, searched_a = _stored(mlflow, ids[exp_a], trace_a, proxy)
    assert mlflow.trace_ids(ids[exp_a]) == [got_a.trace_id], "team B's trace leaked into team A"
    for text in (raw_a, searched_a):
        _assert_no_secret("team A's stored trace", text)
        assert PROMPT_WORDS not in text, "team A's prompt reached MLflow"
    chat_a = got_a.span("chat gpt-4o")
    prompt_bytes = len(_secret_prompt("A").encode())
    assert chat_a.attributes["input.value"] == f"[masked: {prompt_bytes} bytes]"
    assert got_a.span("invoke_agent report-agent").attributes["koog.node.input"] == \
        f"[masked: {prompt_bytes} bytes]"
    tool_a = got_a.span("execute_tool http_get")
    assert "[redacted:bearer_token]" in tool_a.status_message, got_a.dump()
    assert "[redacted:email]" in tool_a.status_message, got_a.dump()
    _assert_structure_intact(got_a)

    # Team B: redacted. Prompts stay readable, secrets are replaced by named markers.
    got_b, raw_b, searched_b = _stored(mlflow, ids[exp_b], trace_b, proxy)
    assert mlflow.trace_ids(ids[exp_b]) == [got_b.trace_id], "team A's trace leaked into team B"
    for text in (raw_b, searched_b):
        _assert_no_secret("team B's stored trace", text)
    assert PROMPT_WORDS in raw_b, "the redacting route lost the prompt itself"
    chat_b = got_b.span("chat gpt-4o")
    kept = chat_b.attributes["input.value"]
    for marker in ("openai_api_key", "anthropic_api_key", "aws_access_key_id", "github_token",
                   "google_api_key", "bearer_token", "url_password", "email", "card_number", "jwt"):
        assert f"[redacted:{marker}]" in kept, f"{marker} not redacted in {kept!r}"
    assert "postgres://reporter:[redacted:url_password]@db.internal" in kept
    _assert_structure_intact(got_b)


def test_default_policy_masks_koog_content_and_keeps_the_rest(mlflow, start_proxy, unique_name):
    name = unique_name("default-mask")
    proxy = start_proxy(experiment_name=name)  # no policy configured: the safe default
    sent = send_koog_trace(proxy.url)
    assert sent.all_exports_succeeded, f"export results {sent.export_results}\n{proxy.describe()}"
    got = mlflow.wait_for_spans(None, sent.trace_id, 6, timeout=WAIT, require_complete=True,
                                diagnostics=proxy.describe)
    raw = json.dumps(mlflow.get_trace_raw(sent.trace_id))
    assert "What is 6 * 7?" not in raw and "The answer is 42." not in raw, raw[:3000]
    node = got.span("node nodeCallLLM")
    assert node.attributes["koog.node.input"] == "[masked: 14 bytes]"
    assert node.attributes["koog.node.id"] == "nodeCallLLM"
    tool = got.span("execute_tool calculator")
    assert tool.attributes["gen_ai.tool.call.result"] == "[masked: 2 bytes]"
    assert tool.attributes["koog.tool.tags"] == ["math", "safe"]
    assert tool.status_message == "Tool calculator failed: division by zero"  # nothing to redact
    chat = got.span("chat gpt-4o")
    assert chat.span_type == "CHAT_MODEL" and chat.attributes["gen_ai.usage.input_tokens"] == 12


@pytest.mark.parametrize("mode,expected", [("honor", "client"), ("override", "route"),
                                           ("ignore", "route")])
def test_header_modes(mlflow, start_proxy, unique_name, mode, expected):
    client_exp = mlflow.create_experiment(unique_name("client"))
    route_exp = mlflow.create_experiment(unique_name("route"))
    proxy = start_proxy(config={
        "routes": [{"name": "pinned", "match": {"resource": {"service.name": "pinned-agent"}},
                    "experiment_id": route_exp, "header": mode, "policy": "verbose"}]})
    sent = send_koog_trace(proxy.url, experiment_id=client_exp, service_name="pinned-agent")
    assert sent.all_exports_succeeded, f"export results {sent.export_results}\n{proxy.describe()}"
    want = client_exp if expected == "client" else route_exp
    other = route_exp if expected == "client" else client_exp
    got = mlflow.wait_for_spans(want, sent.trace_id, 6, timeout=WAIT, require_complete=True,
                                diagnostics=proxy.describe)
    assert got.experiment_id == want
    assert mlflow.trace_ids(other) == []
