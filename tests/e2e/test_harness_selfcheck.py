"""Self-checks of the test harness against MLflow directly (no proxy): they prove that the
clients in tests/support send what we think and that the read-back helpers decode what MLflow
3.17 stores, so a failure in test_forwarding.py points at the proxy, not at the harness."""
import json

import pytest

from support.mlflow_server import (MlflowError, decode_any_value, expected_mlflow_value,
                                   normalize_span)
from support.otel_clients import assert_trace_matches, send_koog_trace
from support.otlp_json import build_small_trace, parse_export_response, post_otlp

pytestmark = [pytest.mark.harness]

KOOG_SPANS = 6


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_sdk_export_straight_to_mlflow(mlflow, unique_name, compression):
    exp = mlflow.create_experiment(unique_name("direct"))
    sent = send_koog_trace(mlflow.url, experiment_id=exp, compression=compression)
    assert sent.all_exports_succeeded, sent.export_results
    assert sent.span_count == KOOG_SPANS

    got = mlflow.wait_for_spans(exp, sent.trace_id, KOOG_SPANS, require_complete=True)
    assert_trace_matches(sent, got)
    assert got.trace_id == "tr-" + sent.trace_id
    assert len(got.spans) == KOOG_SPANS, got.dump()
    assert got.state == "OK", got.dump()  # the root's status decides; the failed tool does not
    assert [s.name for s in got.roots] == ["create_agent math-agent"]
    # what MLflow derives, which the proxy's normalization must not break
    types = {s.name: s.span_type for s in got.spans}
    assert types["create_agent math-agent"] == "AGENT"
    assert types["invoke_agent math-agent"] == "AGENT"
    assert types["chat gpt-4o"] == "CHAT_MODEL"
    assert types["execute_tool calculator"] == "TOOL"
    assert json.loads(got.metadata["mlflow.trace.tokenUsage"]) == {
        "input_tokens": 12, "output_tokens": 34, "total_tokens": 46}
    assert got.tags.get("service.name") == "koog-e2e-agent"
    assert [t["trace_id"] for t in mlflow.search_traces(exp)] == [got.trace_id]


def test_sdk_simple_processor_one_request_per_span(mlflow, unique_name):
    """Koog before 1.0: one request per span, children first, root last."""
    exp = mlflow.create_experiment(unique_name("direct"))
    sent = send_koog_trace(mlflow.url, experiment_id=exp, processor="simple")
    assert sent.export_results == ["SUCCESS"] * KOOG_SPANS
    got = mlflow.wait_for_spans(exp, sent.trace_id, KOOG_SPANS, require_complete=True)
    assert_trace_matches(sent, got)


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_raw_otlp_straight_to_mlflow(mlflow, unique_name, fmt):
    exp = mlflow.create_experiment(unique_name("direct"))
    req = build_small_trace()
    resp = post_otlp(mlflow.url, req, experiment_id=exp, fmt=fmt)
    assert resp.status_code == 200, resp.text
    parse_export_response(resp)  # MLflow answers protobuf even to JSON
    got = mlflow.wait_for_spans(exp, req.trace.trace_id, 2, require_complete=True)
    assert_trace_matches(req.trace, got)
    assert got.trace_id == "tr-" + req.body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
    chat = got.span("chat json-model")
    assert chat.attributes["json.int"] == 9007199254740993
    assert chat.status_code == "ERROR" and chat.status_message == "model overloaded"
    assert got.state == "OK"


def test_wait_for_spans_reports_what_is_missing(mlflow, unique_name):
    exp = mlflow.create_experiment(unique_name("direct"))
    req = build_small_trace()
    assert post_otlp(mlflow.url, req, experiment_id=exp).status_code == 200
    with pytest.raises(AssertionError) as e:
        mlflow.wait_for_spans(exp, req.trace.trace_id, 3, timeout=0.5,
                              diagnostics=lambda: "DIAG")
    text = str(e.value)
    assert "MLflow has 2 span(s)" in text and "DIAG" in text and req.trace.trace_id in text
    other = mlflow.create_experiment(unique_name("other"))
    with pytest.raises(AssertionError, match=f"landed in experiment {exp}, expected {other}"):
        mlflow.wait_for_spans(other, req.trace.trace_id, 2, timeout=5)
    assert mlflow.get_trace("0" * 31 + "1") is None


def test_experiment_helpers(mlflow, unique_name):
    name = unique_name("exp")
    assert mlflow.get_experiment_by_name(name) is None
    exp = mlflow.create_experiment(name)
    assert mlflow.get_experiment_by_name(name)["experiment_id"] == exp
    assert mlflow.experiment_id_by_name(name) == exp
    with pytest.raises(MlflowError) as e:
        mlflow.create_experiment(name)
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert mlflow.search_traces(exp) == []


def test_mlflow_value_rules():
    assert expected_mlflow_value('{"a": 1}') == {"a": 1}
    assert expected_mlflow_value('[1, "x"]') == [1, "x"]
    assert expected_mlflow_value('"quoted"') == "quoted"
    for s in ("2", "true", "null", "1.5", "plain text", ""):
        assert expected_mlflow_value(s) == s
    assert expected_mlflow_value(("a", "b")) == ["a", "b"]
    # AnyValue in MLflow's proto-name JSON and in OTLP-JSON lowerCamelCase
    assert decode_any_value({"int_value": 5}) == 5
    assert decode_any_value({"intValue": "9007199254740993"}) == 9007199254740993
    assert decode_any_value({"kvlistValue": {"values": [
        {"key": "k", "value": {"arrayValue": {"values": [{"boolValue": True}]}}}]}}) == {"k": [True]}
    assert decode_any_value({}) is None
    # MLflow's internal span dict (trace artifact): JSON-encoded attribute values
    s = normalize_span({"name": "n", "trace_id": "AAAAAAAAAAAAAAAAAAAAAQ==", "span_id": "AAAAAAAAAAI=",
                        "parent_span_id": None, "attributes": {"a": "1", "b": '"x"'},
                        "status": {"code": "STATUS_CODE_OK", "message": ""}, "events": []})
    assert (s.trace_id, s.span_id, s.parent_span_id) == ("0" * 31 + "1", "0" * 15 + "2", None)
    assert s.attributes == {"a": 1, "b": "x"} and s.status_code == "OK"
