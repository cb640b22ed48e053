"""End to end with a real Koog agent: tests/e2e/koog/ (Kotlin, Koog 1.0.0 from Maven Central, Koog's
mock LLM executor, so no network or API key) runs once with setVerbose(true) and once without,
exporting through Koog's OpenTelemetry feature (OtlpHttpSpanExporter) to the proxy, which forwards
to a real MLflow server; the trace is then read back through MLflow's REST API.

What Koog emits is described in koog_runner.py. These tests assert what holds whatever the proxy's
content policy: the span tree, the tool call, and Koog's own masking ("HIDDEN:non-empty") when not
verbose. The verbose assertions need a proxy route that keeps content: PASS_THROUGH below is the
proxy configuration for that (the proxy masks content by default).
"""
from __future__ import annotations

import json
import time
from collections import Counter

from koog_runner import (AGENT_ID, CONTENT_KEYS, DEFAULT_PROMPT, DEFAULT_SYSTEM_PROMPT,
                         FINAL_ANSWER, HIDDEN, KOOG_VERSION, MODEL, PARENTS, PARENTS_OF_CHAT,
                         SPAN_NAMES, STRATEGY, TOOL, TOOL_RESULT, run_koog_agent)
from support.masking import unmasked_leaves

WAIT = 60.0  # seconds for the trace to reach MLflow through the proxy
# start_proxy kwargs for a route that keeps prompts and responses: the proxy's default policy
# masks content, the built-in "verbose" policy keeps it.
PASS_THROUGH: dict = {"config": {"default_route": {"policy": "verbose"}}}


def _kind(span_name: str) -> str:
    return span_name.split(" ", 1)[0]


def _text(value) -> str:
    """An attribute value as MLflow returns it (JSON strings come back parsed) as one string."""
    return value if isinstance(value, str) else json.dumps(value)


def _run_and_fetch(mlflow, start_proxy, unique_name, *, verbose: bool, processor: str = "batch",
                   proxy_kwargs: dict | None = None):
    name = unique_name("koog")
    proxy = start_proxy(experiment_name=name, **(proxy_kwargs or {}))
    run = run_koog_agent(proxy, verbose=verbose, service_name=name, processor=processor)
    assert run.returncode == 0 and run.all_exports_succeeded, (
        f"{run.describe()}\n{proxy.describe()}")
    assert run.report["koog_version"] == KOOG_VERSION
    assert run.report["answer"] == FINAL_ANSWER, run.describe()
    assert run.span_count == len(SPAN_NAMES), run.describe()

    got = mlflow.wait_for_spans(None, run.trace_id, len(SPAN_NAMES), timeout=WAIT,
                                require_complete=True, diagnostics=proxy.describe)
    exp = mlflow.get_experiment_by_name(name)
    assert exp is not None, f"the proxy did not create experiment {name!r}\n{proxy.describe()}"
    assert got.experiment_id == exp["experiment_id"], got.dump()
    assert mlflow.trace_ids(exp["experiment_id"]) == [got.trace_id]
    return run, got, proxy


def _assert_koog_trace_shape(run, got):
    """Span names, parent links, the tool call: the same with and without verbose."""
    names = [s.name for s in got.spans]
    assert Counter(names) == Counter(SPAN_NAMES), got.dump()
    # what MLflow holds is what the agent exported
    sent = {s["span_id"]: s for s in run.report["spans"]}
    assert {s.span_id for s in got.spans} == set(sent), got.dump()
    assert {s.trace_id for s in got.spans} == {run.trace_id}
    for s in got.spans:
        assert s.parent_span_id == sent[s.span_id]["parent_span_id"], (s.name, got.dump())

    by_id = got.by_id()
    assert [s.name for s in got.roots] == [f"create_agent {AGENT_ID}"], got.dump()
    for s in got.spans:
        if s.parent_span_id is None:
            continue
        parent = by_id.get(s.parent_span_id)
        assert parent is not None, f"{s.name}: parent {s.parent_span_id} missing\n{got.dump()}"
        assert s.start_time_unix_nano >= parent.start_time_unix_nano, (s.name, parent.name)
        assert s.end_time_unix_nano <= parent.end_time_unix_nano, (s.name, parent.name)
        if _kind(s.name) == "chat":
            assert parent.name in PARENTS_OF_CHAT, (s.name, parent.name)
        else:
            assert parent.name == PARENTS[s.name], (s.name, parent.name)
    assert got.state == "OK", got.dump()
    assert all(s.status_code in ("OK", "UNSET") for s in got.spans), got.dump()

    root = got.span(f"create_agent {AGENT_ID}")
    assert root.attributes["gen_ai.operation.name"] == "create_agent"
    assert root.attributes["gen_ai.agent.id"] == AGENT_ID
    assert root.attributes["gen_ai.request.model"] == MODEL
    invoke = got.span(f"invoke_agent {AGENT_ID}")
    assert invoke.attributes["gen_ai.operation.name"] == "invoke_agent"
    strategy = got.span(f"strategy {STRATEGY}")
    assert strategy.attributes["koog.strategy.name"] == STRATEGY
    assert (strategy.attributes["gen_ai.conversation.id"]
            == invoke.attributes["gen_ai.conversation.id"])
    for s in got.spans:
        if _kind(s.name) == "node":
            assert s.attributes["koog.node.id"] == s.name.split(" ", 1)[1]

    # the tool call: the first chat asks for get_weather, Koog runs it, the second chat answers
    chats = {by_id[s.parent_span_id].name: s for s in got.spans if _kind(s.name) == "chat"}
    first, second = chats["node call_llm"], chats["node send_tool_result"]
    for chat in (first, second):
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.request.model"] == MODEL
        assert chat.attributes["gen_ai.provider.name"] == "openai"
        assert chat.span_type == "CHAT_MODEL", chat.attributes
    assert first.attributes["gen_ai.response.finish_reasons"] == "[tool_calls]"
    assert second.attributes["gen_ai.response.finish_reasons"] == "[stop]"
    assert first.end_time_unix_nano <= got.span(f"execute_tool {TOOL}").start_time_unix_nano
    tool = got.span(f"execute_tool {TOOL}")
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == TOOL
    assert tool.attributes["gen_ai.tool.description"] == "Returns the current weather for a city"
    assert tool.span_type == "TOOL", tool.attributes
    assert got.tags.get("service.name") in (None, run.report["service_name"]), got.tags


def _content_values(got) -> list[tuple[str, str, object]]:
    """(span name, key, value) for every content key Koog sets on the spans."""
    out = []
    for s in got.spans:
        for key in CONTENT_KEYS[_kind(s.name)]:
            assert key in s.attributes, f"{s.name} lacks {key}: {sorted(s.attributes)}"
            out.append((s.name, key, s.attributes[key]))
    return out


def test_koog_agent_not_verbose_sends_hidden_placeholders(mlflow, start_proxy, unique_name,
                                                          koog_jar):
    run, got, _ = _run_and_fetch(mlflow, start_proxy, unique_name, verbose=False)
    _assert_koog_trace_shape(run, got)

    values = _content_values(got)
    assert len(values) == 25, values
    not_hidden = [(n, k, v) for n, k, v in values if v != HIDDEN]
    assert not not_hidden, f"Koog left content unmasked without setVerbose(true): {not_hidden}"
    # and none of the conversation reached MLflow anywhere (previews, metadata, MLflow's own keys)
    everything = json.dumps(got.raw)
    for text in (DEFAULT_PROMPT, DEFAULT_SYSTEM_PROMPT, FINAL_ANSWER, TOOL_RESULT):
        assert text not in everything, f"{text!r} is in the stored trace: {got.dump()}"


def test_koog_agent_verbose_sends_content(mlflow, start_proxy, unique_name, koog_jar):
    run, got, _ = _run_and_fetch(mlflow, start_proxy, unique_name, verbose=True,
                                 proxy_kwargs=PASS_THROUGH)
    _assert_koog_trace_shape(run, got)

    values = _content_values(got)
    hidden = [(n, k) for n, k, v in values if v == HIDDEN]
    assert not hidden, f"verbose run still carries Koog placeholders: {hidden}"
    by_id = got.by_id()
    chats = {by_id[s.parent_span_id].name: s for s in got.spans if s.name == f"chat {MODEL}"}
    first, second = chats["node call_llm"], chats["node send_tool_result"]
    assert DEFAULT_PROMPT in _text(first.attributes["gen_ai.input.messages"])
    assert DEFAULT_SYSTEM_PROMPT in _text(first.attributes["system_instructions"])
    out = _text(first.attributes["gen_ai.output.messages"])
    assert "tool_call" in out and TOOL in out and "Paris" in out, out
    assert TOOL_RESULT in _text(second.attributes["gen_ai.input.messages"])
    assert FINAL_ANSWER in _text(second.attributes["gen_ai.output.messages"])
    assert TOOL in _text(first.attributes["gen_ai.tool.definitions"])

    tool = got.span(f"execute_tool {TOOL}")
    assert tool.attributes["gen_ai.tool.call.arguments"] == {"city": "Paris"}
    assert tool.attributes["gen_ai.tool.call.result"] == TOOL_RESULT
    assert got.span("node call_llm").attributes["koog.node.input"] == DEFAULT_PROMPT
    assert FINAL_ANSWER in _text(got.span("node __finish__").attributes["koog.node.output"])
    assert DEFAULT_SYSTEM_PROMPT in _text(
        got.span(f"create_agent {AGENT_ID}").attributes["system_instructions"])


def test_koog_agent_one_request_per_span(mlflow, start_proxy, unique_name, koog_jar):
    """Koog's feature with a simple span processor: each span its own request, the root last
    (how Koog before 1.0 exported); the trace still completes."""
    run, got, _ = _run_and_fetch(mlflow, start_proxy, unique_name, verbose=False,
                                 processor="simple")
    assert len(run.export_results) == len(SPAN_NAMES), run.describe()
    _assert_koog_trace_shape(run, got)


# ---- two teams' Koog agents through one proxy: a masking route and a verbose route -------------

# Planted in the prompt, the system prompt and the tool call (arguments and result). Built from
# pieces so that no secret scanner takes this file for a leak.
PLANTED_SECRETS = {
    "openai": "sk-proj-" + "Q3xT9vLm2RkP8wZc4NbY7dHfJ6",
    "aws": "AKIA" + "Z7QW3ERT5YUI9OPL",
    "github": "ghp_" + "R8x2Kq9LmZ4vT7bW1nC6yH3jP5sD0fG8aE2uI4oQ",
    "email": "jane.doe@corp-example.com",
    "card": "4539 1488 0343 6467",
}
PLANTED_PROMPT = (f"What is the weather in Paris for the board offsite? Bill card "
                  f"{PLANTED_SECRETS['card']}, mail {PLANTED_SECRETS['email']}.")
PLANTED_SYSTEM = (f"You are the travel desk's weather assistant. The OpenAI key is "
                  f"{PLANTED_SECRETS['openai']}; never reveal it.")
PLANTED_CITY = f"Paris (account {PLANTED_SECRETS['aws']}, token {PLANTED_SECRETS['github']})"
# Conversation text that is not a secret but must not reach MLflow under masking either.
PLANTED_TEXT = ["board offsite", "travel desk's weather assistant", PLANTED_CITY, FINAL_ANSWER,
                "Sunny, 21 degrees Celsius"]


def _stored_json(mlflow, got, experiment_id: str) -> str:
    """Everything MLflow holds for the trace: the full trace (info, spans, previews, metadata)
    and its entry in the experiment's search results (the other run's trace is in there too)."""
    return json.dumps(mlflow.get_trace_raw(got.trace_id)) + json.dumps(
        [t for t in mlflow.search_traces(experiment_id) if t.get("trace_id") == got.trace_id])


def _usage(got) -> list[tuple]:
    return sorted((s.attributes.get("gen_ai.usage.input_tokens"),
                   s.attributes.get("gen_ai.usage.output_tokens"))
                  for s in got.spans if _kind(s.name) == "chat")


def test_koog_agents_of_two_teams_masked_and_verbose_in_experiments_created_by_name(
        mlflow, start_proxy, unique_name, koog_jar):
    """Team A's agents go through the default policy (content masked), team B's through the
    verbose one; each team's agent runs with setVerbose(true) and without, with secrets planted
    in the prompt, the system prompt and the tool call. The whole stored JSON is searched."""
    exp_a, exp_b = unique_name("koog-team-a"), unique_name("koog-team-b")
    proxy = start_proxy(config={"routes": [
        {"name": "team-a", "match": {"resource": {"service.name": {"glob": "team-a-*"}}},
         "experiment_name": exp_a},  # no policy: the default, which masks content
        {"name": "team-b", "match": {"resource": {"service.name": {"glob": "team-b-*"}}},
         "experiment_name": exp_b, "policy": "verbose"},
    ]})
    runs = {}
    for team in ("a", "b"):
        for verbose in (True, False):
            run = run_koog_agent(proxy, verbose=verbose, service_name=f"team-{team}-agent",
                                 prompt=PLANTED_PROMPT, system_prompt=PLANTED_SYSTEM,
                                 city=PLANTED_CITY)
            assert run.returncode == 0 and run.all_exports_succeeded, (
                f"{run.describe()}\n{proxy.describe()}")
            assert run.report["answer"] == FINAL_ANSWER, run.describe()
            runs[team, verbose] = run

    ids = {}
    for team, name in (("a", exp_a), ("b", exp_b)):
        exp = mlflow.get_experiment_by_name(name)
        for _ in range(int(WAIT * 4)):
            if exp:
                break
            time.sleep(0.25)
            exp = mlflow.get_experiment_by_name(name)
        assert exp is not None, f"the proxy did not create experiment {name!r}\n{proxy.describe()}"
        ids[team] = exp["experiment_id"]
    assert ids["a"] != ids["b"]

    stored = {}
    for (team, verbose), run in runs.items():
        got = mlflow.wait_for_spans(ids[team], run.trace_id, len(SPAN_NAMES), timeout=WAIT,
                                    require_complete=True, diagnostics=proxy.describe)
        _assert_koog_trace_shape(run, got)
        stored[team, verbose] = (got, _stored_json(mlflow, got, ids[team]))
    for team in ("a", "b"):
        assert sorted(mlflow.trace_ids(ids[team])) == sorted(
            stored[team, v][0].trace_id for v in (True, False)), f"team {team}: wrong traces"

    for (team, verbose), (got, everything) in stored.items():  # shown with pytest -s
        by_id = got.by_id()
        chat = next(s for s in got.spans
                    if _kind(s.name) == "chat" and by_id[s.parent_span_id].name == "node call_llm")
        tool = got.span(f"execute_tool {TOOL}")
        print(f"\nteam {team.upper()} setVerbose({str(verbose).lower()}) -> experiment {ids[team]}: "
              f"{len(got.spans)} spans, state {got.state}, {len(everything)} bytes of stored JSON, "
              f"secrets found: {[k for k, v in PLANTED_SECRETS.items() if v in everything]}\n"
              f"  chat gen_ai.input.messages = {_text(chat.attributes['gen_ai.input.messages'])[:90]!r}\n"
              f"  execute_tool gen_ai.tool.call.arguments = "
              f"{_text(tool.attributes['gen_ai.tool.call.arguments'])[:90]!r}\n"
              f"  chat usage (in, out) = {_usage(got)}, span types "
              f"{sorted({s.span_type for s in got.spans if s.span_type})}")

    # Team A, masked: not one planted secret or piece of the conversation anywhere in what
    # MLflow holds, with or without setVerbose(true); the content keys say only their size
    # (verbose) or keep Koog's placeholder (not verbose).
    for verbose in (True, False):
        got, everything = stored["a", verbose]
        leaked = [k for k, secret in PLANTED_SECRETS.items() if secret in everything]
        leaked += [text for text in PLANTED_TEXT if text in everything]
        assert not leaked, f"team A (verbose={verbose}) leaks {leaked}:\n{got.dump()}"
        for span, key, value in _content_values(got):
            if verbose:  # masked whole, or JSON masked leaf by leaf (structure kept)
                assert not unmasked_leaves(value), (span, key, value)
            else:
                assert value == HIDDEN, (span, key, value)
        assert _usage(got) == _usage(stored["b", verbose][0]), "token usage changed by masking"
        assert all(u != (None, None) for u in _usage(got)), _usage(got)

    # Team B, verbose: the conversation is there when the agent is verbose, and only then.
    got, everything = stored["b", True]
    by_id = got.by_id()
    first = next(s for s in got.spans
                 if _kind(s.name) == "chat" and by_id[s.parent_span_id].name == "node call_llm")
    assert PLANTED_PROMPT in _text(first.attributes["gen_ai.input.messages"]), got.dump()
    assert PLANTED_SYSTEM in _text(first.attributes["system_instructions"])
    tool = got.span(f"execute_tool {TOOL}")
    assert tool.attributes["gen_ai.tool.call.arguments"] == {"city": PLANTED_CITY}
    assert PLANTED_CITY in _text(tool.attributes["gen_ai.tool.call.result"])
    assert got.span("node call_llm").attributes["koog.node.input"] == PLANTED_PROMPT
    got, everything = stored["b", False]
    assert not [t for t in [PLANTED_PROMPT, PLANTED_SYSTEM, *PLANTED_TEXT] if t in everything]
    assert all(value == HIDDEN for _, _, value in _content_values(got))
