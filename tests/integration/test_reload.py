"""SIGHUP reloads routes and policies: new behaviour at the (fake) MLflow after the signal, no
connection or span lost while reloading under load, and a bad file rejected with a log line
while the previous routes stay in force."""
from __future__ import annotations

import json
import signal
import time

import pytest

from support.admin import scrape
from support.delivery import (AGENT_PROMPT, LoadSender, agent_trace, delivered_span,
                              numbered_request, post, read_dead_letters, span_attribute)
from support.fake_mlflow import FakeMlflow
from support.net import wait_until
from support.proxy_process import ProxyProcess

PROMPT = "my secret prompt"


@pytest.fixture
def fake_mlflow():
    fake = FakeMlflow().start()
    yield fake
    fake.stop()


def routing_config(experiment: str, policy: str) -> dict:
    return {
        "mlflow": {"experiment_id": "1"},
        "exporter": {"batch_linger": "0ms"},
        "routes": [{"name": "team-a", "match": {"resource": {"service.name": "team-a"}},
                    "experiment_id": experiment, "policy": policy, "header": "override"}],
        "default_route": {"policy": "mask"},
    }


def send_team_a(proxy: ProxyProcess) -> list[str]:
    request, ids = numbered_request(2)
    request.resource_spans[0].resource.attributes[0].value.string_value = "team-a"
    for span in request.resource_spans[0].scope_spans[0].spans:
        attribute = span.attributes.add()
        attribute.key, attribute.value.string_value = "gen_ai.input.messages", PROMPT
    status, _ = post(proxy.host, proxy.port, request.SerializeToString())
    assert status == 200
    return ids


def delivered(fake: FakeMlflow, ids: list[str]):
    """(experiment id, the prompt attribute's value) of the export carrying `ids`."""
    def find():
        for export in fake.delivered():
            if set(ids) <= set(export.span_ids()):
                span = export.request.resource_spans[0].scope_spans[0].spans[0]
                values = [a.value.string_value for a in span.attributes
                          if a.key == "gen_ai.input.messages"]
                return export.experiment_id, values[0]
        return None
    return wait_until(find, 15, what=f"spans {ids} at the fake MLflow")


def wait_for_log(proxy: ProxyProcess, text: str, count: int = 1, timeout: float = 10):
    wait_until(lambda: proxy.log_text().count(text) >= count, timeout,
               what=f"{text!r} x{count} in the proxy log")


@pytest.fixture
def proxy(fake_mlflow, tmp_path, proxy_binary, proxy_log_report):
    config = tmp_path / "proxy.yaml"
    config.write_text(json.dumps(routing_config("11", "verbose")))
    process = ProxyProcess(tmp_path, binary=proxy_binary, mlflow_url=fake_mlflow.url, config=config)
    process.config_path = config
    proxy_log_report([process])  # its log's tail goes into a failing test's report
    process.start()
    yield process
    if process.running():
        process.kill()


def test_sighup_applies_new_routes_and_policies(fake_mlflow, proxy):
    assert delivered(fake_mlflow, send_team_a(proxy)) == ("11", PROMPT)

    proxy.config_path.write_text(json.dumps(routing_config("22", "mask")))
    proxy.signal(signal.SIGHUP)
    wait_for_log(proxy, "reload applied")
    assert delivered(fake_mlflow, send_team_a(proxy)) == ("22", f"[masked: {len(PROMPT)} bytes]")
    assert 'route "team-a"' in proxy.log_text().split("reload applied")[-1]

    metrics = scrape(proxy) if proxy.admin_port else None
    if metrics:
        assert metrics.value("otlp_mlflow_proxy_config_reloads_total", result="applied") == 1
        # Counters keep counting across the swap: 2 spans before, 2 after.
        assert metrics.value("otlp_mlflow_proxy_routed_spans_total", route="team-a",
                             experiment="11") == 2
        assert metrics.value("otlp_mlflow_proxy_routed_spans_total", route="team-a",
                             experiment="22") == 2
    assert proxy.stop() == 0


def test_the_exporter_reads_the_reloaded_routes(fake_mlflow, tmp_path, proxy_binary):
    """The exporter names the routes in force, not those it started with: spans for a missing
    experiment are dead-lettered with a reason naming the route that sent them there."""
    dead_letter = tmp_path / "dead.otlpdl"

    def config(route: str) -> dict:
        return {"mlflow": {"experiment_id": "1"},
                "exporter": {"batch_linger": "0ms", "dead_letter_file": str(dead_letter)},
                "routes": [{"name": route, "match": {"resource": {"service.name": "team-a"}},
                            "experiment_name": "must-exist", "create_experiment": False}]}

    path = tmp_path / "proxy.yaml"
    path.write_text(json.dumps(config("before-reload")))
    process = ProxyProcess(tmp_path, binary=proxy_binary, mlflow_url=fake_mlflow.url, config=path)
    process.start()
    try:
        send_team_a(process)
        wait_until(lambda: dead_letter.exists() and len(read_dead_letters(dead_letter)) == 1, 15,
                   what="the first spans dead-lettered")
        assert '"before-reload"' in read_dead_letters(dead_letter)[0]["reason"]

        path.write_text(json.dumps(config("after-reload")))
        process.signal(signal.SIGHUP)
        wait_for_log(process, "reload applied")
        send_team_a(process)
        wait_until(lambda: len(read_dead_letters(dead_letter)) == 2, 15,
                   what="the spans sent after the reload dead-lettered")
        reason = read_dead_letters(dead_letter)[1]["reason"]
        assert 'its route ("after-reload")' in reason, reason
        assert "before-reload" not in reason
        assert "must-exist" not in fake_mlflow.experiments
    finally:
        if process.running():
            process.kill()


@pytest.mark.parametrize("bad", [
    ("routes: [\n", "invalid YAML"),
    ("routes:\n  - name: x\n    policy: no-such-policy\n", "unknown policy \"no-such-policy\""),
    ("receiver:\n  listen: nowhere\n", "receiver.listen"),
], ids=["yaml", "unknown-policy", "bad-value"])
def test_a_bad_config_is_rejected_and_the_old_routes_stay(fake_mlflow, proxy, bad):
    text, message = bad
    proxy.config_path.write_text(text)
    proxy.signal(signal.SIGHUP)
    wait_for_log(proxy, "reload rejected, the previous routes and policies stay in force")
    assert message in proxy.log_text()
    assert delivered(fake_mlflow, send_team_a(proxy)) == ("11", PROMPT)
    if proxy.admin_port:
        assert scrape(proxy).value("otlp_mlflow_proxy_config_reloads_total", result="rejected") == 1
    assert proxy.stop() == 0


def test_settings_that_need_a_restart_are_named(fake_mlflow, proxy):
    config = routing_config("11", "verbose")
    config["queue"] = {"max_bytes": "1MiB"}
    proxy.config_path.write_text(json.dumps(config))
    proxy.signal(signal.SIGHUP)
    wait_for_log(proxy, "reload applied")
    wait_for_log(proxy, "changed settings in queue take effect only after a restart")


def test_reloading_under_load_loses_no_connection_and_no_span(fake_mlflow, proxy):
    sender = LoadSender(proxy.host, proxy.port, threads=3, spans=2).start()
    for i in range(10):
        experiment, policy = ("22", "mask") if i % 2 == 0 else ("11", "verbose")
        proxy.config_path.write_text(json.dumps(routing_config(experiment, policy)))
        proxy.signal(signal.SIGHUP)
        time.sleep(0.15)
    wait_for_log(proxy, "reload applied", count=10)
    sender.stop()
    assert set(sender.statuses) == {200}, sender.statuses
    assert sender.acknowledged
    fake_mlflow.wait_for_spans(len(sender.acknowledged))
    assert set(sender.acknowledged) <= set(fake_mlflow.delivered_span_ids())
    assert proxy.stop() == 0


def test_a_reload_keeps_trace_previews_and_applies_new_cache_limits(fake_mlflow, proxy):
    """The preview cache outlives the router: a trace whose invoke_agent arrived before a SIGHUP
    and whose root arrives after still gets its preview; the new preview_cache limits apply
    without a restart."""
    root_request, rest, root_id = agent_trace("team-a")
    assert post(proxy.host, proxy.port, rest.SerializeToString())[0] == 200
    if proxy.admin_port:
        assert scrape(proxy).value("otlp_mlflow_proxy_preview_cache_entries") == 1

    config = routing_config("11", "verbose")
    config["preview_cache"] = {"max_bytes": "1MiB", "ttl": "5m"}
    proxy.config_path.write_text(json.dumps(config))
    proxy.signal(signal.SIGHUP)
    wait_for_log(proxy, "reload applied")
    assert "take effect only after a restart" not in proxy.log_text()

    assert post(proxy.host, proxy.port, root_request.SerializeToString())[0] == 200
    root, _ = delivered_span(fake_mlflow, root_id)
    inputs = span_attribute(root, "mlflow.spanInputs")
    assert inputs is not None, root
    assert AGENT_PROMPT.encode() in inputs.SerializeToString()
    assert span_attribute(root, "mlflow.spanOutputs") is not None
    if proxy.admin_port:
        m = scrape(proxy)
        assert m.value("otlp_mlflow_proxy_preview_cache_max_bytes") == 1024 * 1024
        assert m.value("otlp_mlflow_proxy_preview_cache_lookups_total", result="hit") == 1
        assert m.value("otlp_mlflow_proxy_preview_cache_entries") == 0
        assert m.value("otlp_mlflow_proxy_normalize_changes_total", rule="preview") == 1
    assert proxy.stop() == 0


def test_sighup_reads_a_rotated_hmac_key_which_is_never_logged(fake_mlflow, proxy, tmp_path):
    key_file = tmp_path / "hmac.key"
    old_key, new_key = "k" * 40, "n" * 40
    key_file.write_text(old_key + "\n")
    config = routing_config("11", "pseudonyms")
    config["policies"] = {"pseudonyms": {"content": "hmac", "key_file": str(key_file)}}
    proxy.config_path.write_text(json.dumps(config))
    proxy.signal(signal.SIGHUP)
    wait_for_log(proxy, "reload applied")
    _, before = delivered(fake_mlflow, send_team_a(proxy))
    assert before.startswith("hmac:") and len(before.split(":")) == 3, before
    assert delivered(fake_mlflow, send_team_a(proxy))[1] == before  # equal values stay equal

    key_file.write_text(new_key)
    proxy.signal(signal.SIGHUP)
    wait_for_log(proxy, "reload applied", count=2)
    _, after = delivered(fake_mlflow, send_team_a(proxy))
    assert after.startswith("hmac:") and after.split(":")[1] != before.split(":")[1], (before, after)

    key_file.write_text("short")  # refused: the rotated key stays in use
    proxy.signal(signal.SIGHUP)
    wait_for_log(proxy, "at least 32 are needed")
    assert delivered(fake_mlflow, send_team_a(proxy))[1] == after
    log = proxy.log_text()
    assert old_key not in log and new_key not in log and PROMPT not in log.split("reload applied")[-1]
    assert proxy.stop() == 0
