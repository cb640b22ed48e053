"""Per-route experiment creation against the fake MLflow: a route may say whether its experiment
name is created on first use (`create_experiment`, default `mlflow.create_experiments`). Spans for
a missing experiment their route may not create are dead-lettered with a reason naming the
experiment and the route, counted and logged (rate-limited), never dropped silently; once the
experiment exists, `replay` delivers them."""
from __future__ import annotations

import subprocess


from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from support.delivery import numbered_request, post, read_dead_letters, span_ids_of
from support.fake_mlflow import FakeMlflow
from support.net import wait_until


def three_services() -> tuple[bytes, dict[str, list[str]]]:
    """One request with three services' traces; their span ids by service."""
    request = ExportTraceServiceRequest()
    ids = {}
    for service in ("svc-a", "svc-b", "svc-c"):
        part, span_ids = numbered_request(3)
        part.resource_spans[0].resource.attributes[0].value.string_value = service
        request.resource_spans.extend(part.resource_spans)
        ids[service] = span_ids
    return request.SerializeToString(), ids


def delivered_to(fake: FakeMlflow, experiment_id: str) -> list[str]:
    return sorted(i for e in fake.delivered() if e.experiment_id == experiment_id
                  for i in e.span_ids())


def test_a_route_that_may_not_create_dead_letters_a_missing_experiment_and_names_it(
        fake_mlflow, proxy_factory, tmp_path, proxy_binary):
    fake_mlflow.experiments["already-there"] = "7"
    dead_letter = tmp_path / "dead.otlpdl"
    proxy = proxy_factory({
        "mlflow": {"experiment_id": "1"},  # create_experiments defaults to true
        "exporter": {"dead_letter_file": str(dead_letter), "batch_linger": "0ms"},
        "routes": [
            {"name": "team-a", "match": {"resource": {"service.name": "svc-a"}},
             "experiment_name": "made-on-demand"},
            {"name": "team-b", "match": {"resource": {"service.name": "svc-b"}},
             "experiment_name": "must-exist", "create_experiment": False},
            {"name": "team-c", "match": {"resource": {"service.name": "svc-c"}},
             "experiment_name": "already-there", "create_experiment": False},
        ]})
    body, ids = three_services()
    status, _ = post(proxy.host, proxy.port, body)
    assert status == 200

    wait_until(lambda: dead_letter.exists() and read_dead_letters(dead_letter), 15,
               what="team B's spans in the dead-letter file")
    wait_until(lambda: len(fake_mlflow.delivered_span_ids()) >= 6, 15,
               what="team A's and team C's spans delivered")
    assert fake_mlflow.creates == ["made-on-demand"], "only team A's route may create"
    assert "must-exist" not in fake_mlflow.experiments
    assert delivered_to(fake_mlflow, fake_mlflow.experiments["made-on-demand"]) == sorted(ids["svc-a"])
    assert delivered_to(fake_mlflow, "7") == sorted(ids["svc-c"])

    (record,) = read_dead_letters(dead_letter)
    assert record["experiment"] == "name:must-exist" and not record["may_create"]
    assert record["status"] == 404 and record["span_count"] == 3
    assert span_ids_of(record["request"]) == ids["svc-b"]
    assert 'experiment "must-exist" does not exist in MLflow' in record["reason"]
    assert '"team-b"' in record["reason"] and "create_experiment: false" in record["reason"]
    log = proxy.log_text()
    assert 'dead-lettering 3 spans: experiment "must-exist"' in log, log
    assert '"team-b"' in log
    assert 'route "team-b"' in log and "(must exist)" in log  # the start-up route table

    # More spans for the missing experiment: dead-lettered too, nothing is created.
    for _ in range(5):
        part, _ = numbered_request(2)
        part.resource_spans[0].resource.attributes[0].value.string_value = "svc-b"
        assert post(proxy.host, proxy.port, part.SerializeToString())[0] == 200
    wait_until(lambda: sum(r["span_count"] for r in read_dead_letters(dead_letter)) == 13, 15,
               what="13 dead-lettered spans")
    assert fake_mlflow.creates == ["made-on-demand"]

    # Once someone creates the experiment, replay delivers the spans into it.
    fake_mlflow.experiments["must-exist"] = "42"
    result = subprocess.run([str(proxy_binary), "replay", "--mlflow-url", fake_mlflow.url,
                             "--timeout", "20s", str(dead_letter)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "13 of 13 spans delivered" in result.stdout
    assert set(ids["svc-b"]) <= set(delivered_to(fake_mlflow, "42"))
    assert fake_mlflow.creates == ["made-on-demand"], "replay must not create what the route may not"


def test_a_route_may_create_when_the_global_default_forbids_it(fake_mlflow, proxy_factory, tmp_path,
                                                               proxy_binary):
    dead_letter = tmp_path / "dead.otlpdl"
    proxy = proxy_factory({
        "mlflow": {"experiment_name": "default-missing", "create_experiments": False},
        "exporter": {"dead_letter_file": str(dead_letter), "batch_linger": "0ms"},
        "routes": [
            {"name": "team-a", "match": {"resource": {"service.name": "svc-a"}},
             "experiment_name": "team-a-traces", "create_experiment": True},
            # inherits mlflow.experiment_name and mlflow.create_experiments: false
            {"name": "team-b", "match": {"resource": {"service.name": "svc-b"}}},
        ]})
    body, ids = three_services()
    assert post(proxy.host, proxy.port, body)[0] == 200
    wait_until(lambda: len(fake_mlflow.delivered_span_ids()) >= 3, 15, what="team A's spans")
    wait_until(lambda: dead_letter.exists() and
               sum(r["span_count"] for r in read_dead_letters(dead_letter)) == 6, 15,
               what="team B's and the default route's spans dead-lettered")
    assert fake_mlflow.creates == ["team-a-traces"]
    assert delivered_to(fake_mlflow, fake_mlflow.experiments["team-a-traces"]) == sorted(ids["svc-a"])
    records = read_dead_letters(dead_letter)
    assert {r["experiment"] for r in records} == {"name:default-missing"}
    got = sorted(i for r in records for i in span_ids_of(r["request"]))
    assert got == sorted(ids["svc-b"] + ids["svc-c"])
    assert all('"team-b", "default"' in r["reason"] for r in records), records[0]["reason"]


def one_service(service: str, spans: int = 2) -> tuple[bytes, list[str]]:
    request, ids = numbered_request(spans)
    request.resource_spans[0].resource.attributes[0].value.string_value = service
    return request.SerializeToString(), ids


def test_an_experiment_created_concurrently_by_someone_else_is_looked_up_again(
        fake_mlflow, proxy_factory, tmp_path, proxy_binary):
    # The proxy's lookup says "missing", its create answers RESOURCE_ALREADY_EXISTS (another
    # client won the race): it looks up again and delivers there.
    fake_mlflow.experiments["racy"] = "9"
    fake_mlflow.hidden_lookups["racy"] = 1
    proxy = proxy_factory({
        "mlflow": {"experiment_name": "racy"}, "exporter": {"batch_linger": "0ms"}})
    body, ids = one_service("svc")
    assert post(proxy.host, proxy.port, body)[0] == 200
    wait_until(lambda: delivered_to(fake_mlflow, "9") == sorted(ids), 15, what="the spans in 9")
    assert fake_mlflow.creates == ["racy"]
    assert fake_mlflow.experiments == {"racy": "9"}


def test_an_unknown_experiment_id_is_resolved_again_once(fake_mlflow, proxy_factory, tmp_path, proxy_binary):
    from support.fake_mlflow import ScriptedAnswer
    dead_letter = tmp_path / "dead.otlpdl"
    fake_mlflow.experiments["moved"] = "7"
    proxy = proxy_factory({
        "mlflow": {"experiment_name": "moved"},
        "exporter": {"batch_linger": "0ms", "dead_letter_file": str(dead_letter)}})
    body, first = one_service("svc")
    assert post(proxy.host, proxy.port, body)[0] == 200
    wait_until(lambda: delivered_to(fake_mlflow, "7") == sorted(first), 15, what="spans in 7")

    # The experiment is deleted and created again under a new id; the proxy's cached id is now
    # unknown to MLflow: one 404, a new lookup, delivered to the new id.
    fake_mlflow.experiments["moved"] = "8"
    fake_mlflow.script = [ScriptedAnswer(404, '{"detail": "No experiment with id 7"}')]
    body, second = one_service("svc")
    assert post(proxy.host, proxy.port, body)[0] == 200
    wait_until(lambda: delivered_to(fake_mlflow, "8") == sorted(second), 15, what="spans in 8")
    tail = [(e.experiment_id, e.status) for e in fake_mlflow.exports[-2:]]
    assert tail == [("7", 404), ("8", 200)], tail
    assert "resolving again" in proxy.log_text()

    # Only once: when MLflow still does not know the id after the new lookup, the spans are
    # dead-lettered instead of looping.
    fake_mlflow.script = [ScriptedAnswer(404, '{"detail": "No experiment with id 8"}')] * 2
    body, third = one_service("svc")
    before = len(fake_mlflow.exports)
    assert post(proxy.host, proxy.port, body)[0] == 200
    wait_until(lambda: dead_letter.exists() and read_dead_letters(dead_letter), 15,
               what="the spans dead-lettered")
    assert [e.status for e in fake_mlflow.exports[before:]] == [404, 404]
    (record,) = read_dead_letters(dead_letter)
    assert span_ids_of(record["request"]) == third and record["status"] == 404
