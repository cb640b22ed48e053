"""`otlp-mlflow-proxy explain` on saved real agent exports (tests/data/otlp_protobuf/, written by
scripts/capture_traces.py: the real Koog agent and the OpenTelemetry Python SDK), run as the real
binary. Expectations come from the trace files themselves, read with the OTLP protobuf classes:
which attributes are content, their sizes, the span ids; not from the proxy's output."""
from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from google.protobuf.json_format import MessageToDict

from support.proxy_process import REPO_ROOT

DATA = REPO_ROOT / "tests" / "data"
KOOG = DATA / "otlp_protobuf" / "koog_agent_trace.pb"
PYTHON_SDK = DATA / "otlp_protobuf" / "python_sdk_trace.pb"

# The default policy's content keys these two agents use (README, "Content keys").
CONTENT_KEYS = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions",
                "gen_ai.system_instructions", "system_instructions", "gen_ai.tool.call.arguments",
                "gen_ai.tool.call.result", "koog.node.input", "koog.node.output"}


def run(binary: Path, *args, stdin: bytes | None = None, env: dict | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OTLP_MLFLOW_PROXY_", "MLFLOW_"))}
    return subprocess.run([str(binary), "explain", *map(str, args)], input=stdin,
                          capture_output=True, timeout=60, env={**clean, **(env or {})}, cwd=cwd)


def explain_json(binary: Path, *args, **kwargs) -> dict:
    done = run(binary, "--json", *args, **kwargs)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def load(path: Path) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.ParseFromString(path.read_bytes())
    return request


def spans_of(request: ExportTraceServiceRequest):
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            yield from scope_spans.spans


def content_attributes(request: ExportTraceServiceRequest) -> dict[tuple[str, str], str]:
    """(span id hex, key) -> the string value of every content attribute in the trace."""
    return {(span.span_id.hex(), kv.key): kv.value.string_value
            for span in spans_of(request) for kv in span.attributes
            if kv.key in CONTENT_KEYS and kv.value.string_value}


def to_otlp_json(request: ExportTraceServiceRequest) -> dict:
    """protobuf's JSON mapping with OTLP-JSON's hex ids (protobuf writes bytes as base64)."""
    def fix(node):
        if isinstance(node, dict):
            return {k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId")
                    else fix(v) for k, v in node.items()}
        return [fix(v) for v in node] if isinstance(node, list) else node
    return fix(MessageToDict(request))


# Values of these keys stay when they are scalars (README, "Structure kept").
STRUCTURAL_KEYS = {"role", "type", "name", "id", "tool_call_id", "finish_reason", "model", "tool"}


def mask_text(text: str) -> str:
    return f"[masked: {len(text.encode())} bytes]"


def looks_like_json(text: str) -> bool:
    return text.lstrip(" \t\r\n")[:1] in ("{", "[")


def mask_leaves(node, nested: bool = False):
    """The default policy's structure-kept mask, written independently of the C++ walker."""
    if isinstance(node, dict):
        return {k: v if k in STRUCTURAL_KEYS and not isinstance(v, (dict, list)) else mask_leaves(v, nested)
                for k, v in node.items()}
    if isinstance(node, list):
        return [mask_leaves(v, nested) for v in node]
    if isinstance(node, str):
        if node and not nested and looks_like_json(node):
            try:
                return compact(mask_leaves(json.loads(node), True))
            except ValueError:
                pass
        return mask_text(node) if node else node
    if isinstance(node, bool):
        return False
    return 0 if isinstance(node, (int, float)) else node


def compact(node) -> str:
    return json.dumps(node, separators=(",", ":"), ensure_ascii=False)


def masked_by_default(value: str) -> str:
    """A content value after the default policy: JSON leaf by leaf, anything else whole."""
    if looks_like_json(value):
        try:
            return compact(mask_leaves(json.loads(value)))
        except ValueError:
            pass
    return mask_text(value)


def changes(report: dict, stage: str | None = None):
    for resource in report["resources"]:
        for span in resource["spans"]:
            for change in span["changes"]:
                if stage is None or change["stage"] == stage:
                    yield span, change


def test_koog_trace_every_content_value_is_masked_leaf_by_leaf(proxy_binary):
    trace = load(KOOG)
    expected = {where: value for where, value in content_attributes(trace).items()
                if masked_by_default(value) != value}
    assert len(expected) >= 20  # the real agent is verbose: prompts, answers, node I/O, tools
    report = explain_json(proxy_binary, KOOG)

    assert report["input"] == {"source": str(KOOG), "format": "protobuf", "requests": 1,
                               "spans": len(list(spans_of(trace))), "rejected_spans": 0,
                               "warnings": [], "header": None}
    policy = {(span["span_id"], change["key"]): change for span, change in changes(report, "policy")}
    assert set(policy) == set(expected)
    for where, value in expected.items():
        change = policy[where]
        assert change["change"] == "changed" and change["place"] == "span"
        assert change["before"] == {"type": "string", "bytes": len(value.encode()), "value": value}
        after = change["after"]["value"]
        # explain shows JSON text as JSON; what the proxy sends is the compact text.
        assert (after if isinstance(after, str) else compact(after)) == masked_by_default(value)
    # The chat spans keep their messages, roles and tool names; the text is gone.
    chat = [c for (span_id, key), c in policy.items() if key == "gen_ai.input.messages"]
    messages = [json.loads(c["after"]["value"]) if isinstance(c["after"]["value"], str)
                else c["after"]["value"] for c in chat]
    assert any([m["role"] for m in ms] == ["System", "tool", "User"] for ms in messages)
    sent = "".join(c["after"]["value"] if isinstance(c["after"]["value"], str) else compact(c["after"]["value"])
                   for c in policy.values())
    assert '"name":"get_weather"' in sent and '"tool":"get_weather"' in sent
    for text in ("What is the weather in Paris", "Sunny, 21 degrees", "helpful weather assistant"):
        assert text not in sent

    tally = report["tally"]
    assert tally["spans"] == len(list(spans_of(trace)))
    assert tally["routes"] == [{"route": "default", "policy": "default",
                                "experiment": {"kind": "id", "value": "0"},
                                "spans": tally["spans"]}]
    assert tally["changes"]["policy"] == {"changed": len(expected), "added": 0, "dropped": 0}
    # The daemon's own policy counters agree with the changes shown.
    assert sum(v["count"] for v in tally["policy"]["values"]) == len(expected)
    assert {v["mode"] for v in tally["policy"]["values"]} == {"mask"}
    assert tally["policy"]["spans"] == tally["spans"]
    assert tally["policy"]["structured"] == sum(looks_like_json(v) for v in expected.values())
    assert set(tally["policy"]["structure_fallbacks"].values()) == {0}


def test_koog_trace_normalization_fixes_counts_and_fills_the_root_preview(proxy_binary):
    trace = load(KOOG)
    report = explain_json(proxy_binary, KOOG)
    normalized = list(changes(report, "normalize"))
    # Koog 1.0.0 sends token counts as strings; normalization makes them integers.
    counts = [(span, c) for span, c in normalized if c["key"].startswith("gen_ai.usage.")]
    sent = [kv for span in spans_of(trace) for kv in span.attributes
            if kv.key.startswith("gen_ai.usage.") and kv.value.HasField("string_value")]
    assert len(counts) == len(sent) > 0
    for _, change in counts:
        assert change["change"] == "changed" and change["before"]["type"] == "string"
        assert change["after"] == {"type": "int", "bytes": len(change["before"]["value"]),
                                   "value": int(change["before"]["value"])}
    # The root (create_agent) takes its trace's request and answer, masked: never the content.
    # Koog 1.x's invoke_agent holds no user message, so the request is the first chat call's.
    root = next(s for r in report["resources"] for s in r["spans"] if not s["parent_span_id"])
    assert root["name"].startswith("create_agent")
    filled = {c["key"]: c["after"]["value"] for c in root["changes"] if c["stage"] == "normalize"}
    first_chat = min((s for s in spans_of(trace) if s.name.startswith("chat ")),
                     key=lambda s: s.start_time_unix_nano)
    sent = json.loads(next(kv.value.string_value for kv in first_chat.attributes
                           if kv.key == "gen_ai.input.messages"))
    expected = [{"role": m["role"].lower(), "content": mask_text(p["content"])}
                for m in sent for p in m["parts"] if p.get("type") == "text"]
    assert filled["mlflow.spanInputs"] == {"messages": expected}
    assert [m["role"] for m in expected] == ["system", "user"]
    answer = next(kv.value.string_value for span in spans_of(trace) for kv in span.attributes
                  if span.name == "node __finish__" and kv.key == "koog.node.output")
    assert filled["mlflow.spanOutputs"] == {"messages": [{"role": "assistant", "content": mask_text(answer)}]}
    assert "Paris" not in json.dumps([c["after"] for _, c in normalized])
    assert report["tally"]["normalize"]["changes"]["preview"] == 1


def test_koog_trace_text_shows_routes_before_after_and_the_tally(proxy_binary):
    done = run(proxy_binary, KOOG)
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode()
    report = explain_json(proxy_binary, KOOG)
    tally = report["tally"]
    lines = text.splitlines()
    assert lines[0] == f"explain {KOOG}: protobuf, 1 request, {tally['spans']} spans"
    assert 'service.name "koog-weather-agent"' in lines
    assert '  route "default" -> experiment id 0, policy "default", normalization on' in lines
    # A long prompt is cut for the terminal, with its size; the masked value follows, cut too
    # when long: the structure kept, the text masked.
    span, change = max(changes(report, "policy"), key=lambda sc: sc[1]["before"]["bytes"])
    size = change["before"]["bytes"]
    after = masked_by_default(change["before"]["value"])
    at = text.index(f"  span \"{span['name']}\" {span['span_id']}")
    block = text[at:text.index("\n  span ", at + 1)]
    assert f"    ~ {change['key']} (policy)\n        before: \"" in block
    assert f"\u2026\" ({size} bytes)\n        after:  \"" in block
    assert f"\u2026\" ({len(after.encode())} bytes)\n" in block
    assert '[masked: 62 bytes]' in block
    assert "\n  span \"strategy weather_strategy\"" in text
    policy_counts = tally["changes"]["policy"]
    assert (f"  attributes by the policy: {policy_counts['changed']} changed, 0 added, 0 dropped"
            in lines)
    assert f"  policy stats: {tally['policy']['summary']}" in lines
    assert (f"  route \"default\" -> experiment id 0, policy \"default\": {tally['spans']} spans"
            in lines)
    # --full prints whole values; --stage policy leaves normalization's changes out.
    full = run(proxy_binary, "--full", KOOG).stdout.decode()
    assert json.dumps(change["before"]["value"]) in full
    policy_only = run(proxy_binary, "--stage", "policy", KOOG).stdout.decode()
    shown = [line for line in policy_only.splitlines() if line.startswith("    ")]
    assert shown and all("(normalize)" not in line for line in shown)
    assert "only the policy stage's changes are shown" in policy_only
    assert f"  policy stats: {tally['policy']['summary']}" in policy_only.splitlines()


def test_python_sdk_trace_redacts_errors_masks_events_and_links_sessions(proxy_binary):
    trace = load(PYTHON_SDK)
    report = explain_json(proxy_binary, PYTHON_SDK)
    assert report["resources"][0]["service_name"] == "travel-assistant"
    policy = list(changes(report, "policy"))
    failed = next(s for s in spans_of(trace) if s.status.message)
    status = [c for _, c in policy if c["place"] == "status"]
    assert len(status) == 1
    assert status[0]["before"]["value"] == failed.status.message
    assert "hunter2" in failed.status.message
    assert "hunter2" not in status[0]["after"]["value"]
    assert "[redacted:url_password]" in status[0]["after"]["value"]
    exception = next(c for _, c in policy if c["place"] == "event" and c["event"] == "exception")
    assert exception["key"] == "exception.message" and exception["index"] == 0
    assert "[redacted:url_password]" in exception["after"]["value"]
    message_event = next(c for _, c in policy if c["place"] == "event"
                         and c["event"] == "gen_ai.user.message")
    assert message_event["after"]["value"] == (
        f"[masked: {len(message_event['before']['value'].encode())} bytes]")
    # No secret planted in the trace survives in anything the proxy would send.
    sent = json.dumps([c["after"] for _, c in changes(report)])
    for secret in ("hunter2", "Sup3rS3cret", "ana.silva@example.com", "4111 1111 1111 1111"):
        assert secret in PYTHON_SDK.read_bytes().decode("latin-1")
        assert secret not in sent
    added = {c["key"]: c["after"]["value"] for _, c in changes(report, "normalize")
             if c["change"] == "added"}
    assert added["session.id"] == "conv-8c1f" and added["user.id"] == "user-4711"
    assert "redact: error 2" in report["tally"]["policy"]["summary"]
    assert report["tally"]["policy"]["redaction_matches"] >= 2


def test_stdin_gzip_and_json_lines_read_as_the_file(proxy_binary, tmp_path):
    from_file = explain_json(proxy_binary, KOOG)
    for args, stdin in (([], KOOG.read_bytes()), (["-"], gzip.compress(KOOG.read_bytes()))):
        piped = explain_json(proxy_binary, *args, stdin=stdin)
        assert piped["input"]["source"] == "-"
        assert piped["resources"] == from_file["resources"]
        assert piped["tally"] == from_file["tally"]
    text = run(proxy_binary, stdin=KOOG.read_bytes()).stdout.decode()
    assert text.startswith("explain stdin: protobuf, 1 request,")

    # One OTLP-JSON request per line, as the Collector's file exporter writes: the two agents'
    # exports as two requests.
    lines = tmp_path / "traces.jsonl"
    lines.write_text("".join(json.dumps(to_otlp_json(load(p))) + "\n" for p in (PYTHON_SDK, KOOG)))
    both = explain_json(proxy_binary, lines)
    assert both["input"]["format"] == "OTLP-JSON lines" and both["input"]["requests"] == 2
    assert {r["request"] for r in both["resources"]} == {0, 1}
    assert both["tally"]["spans"] == from_file["tally"]["spans"] + len(list(spans_of(load(PYTHON_SDK))))


TWO_ROUTES = """
policies:
  travel:
    content: verbose
    resource_keys:
      - {key: "deployment.environment.name", mode: mask}
routes:
  - name: travel
    match:
      resource: {service.name: travel-assistant}
    experiment_name: travel-agents
    policy: travel
  - name: koog
    match:
      resource: {service.name: {glob: "koog-*"}}
    experiment_id: "17"
    policy: mask
    header: ignore
"""


def test_a_config_with_two_routes_and_the_header(proxy_binary, tmp_path):
    config = tmp_path / "proxy.yaml"
    config.write_text(TWO_ROUTES)
    both = tmp_path / "both.pb"  # serialized requests concatenate into one request
    both.write_bytes(PYTHON_SDK.read_bytes() + KOOG.read_bytes())
    sdk_spans = len(list(spans_of(load(PYTHON_SDK))))
    koog_spans = len(list(spans_of(load(KOOG))))

    report = explain_json(proxy_binary, "--config", config, both)
    routes = {(r["route"], json.dumps(r["experiment"]), r["policy"]): r["spans"]
              for r in report["tally"]["routes"]}
    assert routes == {
        ("travel", json.dumps({"kind": "name", "value": "travel-agents", "create": True}), "travel"): sdk_spans,
        ("koog", json.dumps({"kind": "id", "value": "17"}), "mask"): koog_spans}
    for resource in report["resources"]:
        assert resource["route"] == ("travel" if resource["service_name"] == "travel-assistant" else "koog")
    # The travel policy masks a resource attribute; normalization copies the masked value.
    travel = next(r for r in report["resources"] if r["route"] == "travel")
    assert [(c["stage"], c["place"], c["key"], c["before"]["value"], c["after"]["value"])
            for c in travel["changes"]] == [
        ("policy", "resource", "deployment.environment.name", "staging", "[masked: 7 bytes]")]
    copied = {c["after"]["value"] for s in travel["spans"] for c in s["changes"]
              if c["key"] == "deployment.environment.name"}
    assert copied == {"[masked: 7 bytes]"}
    policy_spans = {span["span_id"] for span, _ in changes(report, "policy")}
    # verbose keeps the travel assistant's content; its status message is still redacted.
    sdk_ids = {s.span_id.hex() for s in spans_of(load(PYTHON_SDK))}
    assert {c["place"] for span, c in changes(report, "policy") if span["span_id"] in sdk_ids} == {"status", "event"}
    assert policy_spans - sdk_ids

    text = run(proxy_binary, "--config", config, both).stdout.decode()
    assert ('  route "travel" -> experiment name "travel-agents", policy "travel", normalization on'
            in text.splitlines())
    assert ('  resource attributes: 1 change\n    ~ deployment.environment.name (policy)\n'
            '        before: "staging"\n        after:  "[masked: 7 bytes]"\n') in text
    assert f'  route "koog" -> experiment id 17, policy "mask": {koog_spans} spans' in text.splitlines()

    # The header: the travel route honors it, the koog route ignores it.
    with_header = explain_json(proxy_binary, "--config", config, "--header", "99", both)
    experiments = {r["route"]: r["experiment"] for r in with_header["tally"]["routes"]}
    assert experiments == {"travel": {"kind": "id", "value": "99"}, "koog": {"kind": "id", "value": "17"}}
    assert with_header["input"]["header"] == "99"

    # The same precedence as the daemon: OTLP_MLFLOW_PROXY_CONFIG, and a variable over the file.
    from_env = explain_json(proxy_binary, both, env={"OTLP_MLFLOW_PROXY_CONFIG": str(config)})
    assert from_env["tally"]["routes"] == report["tally"]["routes"]
    plain = tmp_path / "plain.yaml"
    plain.write_text("mlflow:\n  experiment_name: from-the-file\n")
    named = explain_json(proxy_binary, "--config", plain, KOOG,
                         env={"OTLP_MLFLOW_PROXY_EXPERIMENT_NAME": "from-the-variable"})
    assert named["tally"]["routes"][0]["experiment"]["value"] == "from-the-variable"


def test_invalid_spans_are_reported_as_the_receiver_would(proxy_binary, tmp_path):
    request = load(KOOG)
    first = next(spans_of(request))
    first.trace_id = bytes(16)
    path = tmp_path / "one-bad.pb"
    path.write_bytes(request.SerializeToString())
    report = explain_json(proxy_binary, path)
    assert report["input"]["rejected_spans"] == 1
    assert report["input"]["warnings"][0].startswith(f"{path}: 1 invalid spans rejected; first: ")
    assert report["tally"]["spans"] == len(list(spans_of(request))) - 1
    text = run(proxy_binary, path).stdout.decode()
    assert f"receiver: {report['input']['warnings'][0]}" in text.splitlines()
    assert "1 invalid (rejected by the receiver)" in text


@pytest.mark.parametrize("content, message", [
    (b"\x0a\xff\xff\xff\xff\x0f", "stdin: body is not a valid protobuf ExportTraceServiceRequest"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}',
     "stdin: resourceSpans[0].scopeSpans[0].spans[0].traceId: expected 32 hex characters"),
    (b"\x1f\x8b\x08\x00garbage", "stdin: "),
])
def test_an_undecodable_trace_is_an_error_with_the_decoders_message(proxy_binary, content, message):
    done = run(proxy_binary, stdin=content)
    assert done.returncode == 1
    assert done.stdout == b""
    assert done.stderr.decode().startswith(f"otlp-mlflow-proxy explain: {message}")


def test_errors_and_exit_codes(proxy_binary, tmp_path):
    missing = run(proxy_binary, tmp_path / "missing.pb")
    assert missing.returncode == 1
    assert missing.stderr.decode() == (
        f"otlp-mlflow-proxy explain: cannot read {tmp_path / 'missing.pb'}: No such file or directory\n")
    assert run(proxy_binary, tmp_path).returncode == 1  # a directory

    bad = tmp_path / "bad.yaml"
    bad.write_text("routes:\n  - name: r\n    policy: nonesuch\n")
    done = run(proxy_binary, "--config", bad, KOOG)
    assert done.returncode == 1
    assert done.stderr.decode().startswith(f"otlp-mlflow-proxy explain: configuration error: {bad}:3:")
    assert "routes[0].policy" in done.stderr.decode()

    header = run(proxy_binary, "--header", "not-a-number", KOOG)
    assert header.returncode == 1
    assert "x-mlflow-experiment-id" in header.stderr.decode()

    for args in (["--bogus"], [KOOG, KOOG], ["--stage", "both", KOOG], ["--header"]):
        usage = run(proxy_binary, *args)
        assert usage.returncode == 2, args
        assert "Usage: otlp-mlflow-proxy explain" in usage.stderr.decode()
    shown = run(proxy_binary, "--help")
    assert shown.returncode == 0 and shown.stdout.decode().startswith("Usage: otlp-mlflow-proxy explain")
    assert "explain" in subprocess.run([str(proxy_binary), "--help"], capture_output=True,
                                       text=True).stdout
