"""MLflow versions: the proxy reads GET /version at start (and again after an outage) and sends
gzip upstream only to MLflow 3.7 and newer, which decode it; 3.6 answers 400 to a gzip body.
Against the fake MLflow, which answers /version with the version each test gives it."""
from __future__ import annotations

import json
import re

import pytest

from support.admin import scrape
from support.delivery import numbered_request, post
from support.fake_mlflow import FakeMlflow
from support.net import free_port, wait_until
from support.proxy_process import ProxyProcess

FAST = {"admin": {"probe_interval": "200ms"},
        "exporter": {"batch_linger": "0ms",
                     "retry": {"initial_backoff": "50ms", "max_backoff": "300ms"}}}


@pytest.fixture
def fakes():
    started: list[FakeMlflow] = []

    def start(version: str, **kwargs) -> FakeMlflow:
        fake = FakeMlflow(version=version, **kwargs).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        try:
            fake.stop()
        except OSError:
            pass


@pytest.fixture
def proxy_teardown() -> str:
    return "kill"  # several tests leave their fake MLflow stopped or refusing


@pytest.fixture
def proxies(proxy_factory):
    """proxy_factory with fast retries, experiment 1 and an optional exporter.compression."""
    def start(mlflow_url: str, compression: str | None = None, **kwargs) -> ProxyProcess:
        config = json.loads(json.dumps(FAST))
        config["mlflow"] = {"experiment_id": "1"}
        if compression is not None:
            config["exporter"]["compression"] = compression
        return proxy_factory(config, mlflow_url=mlflow_url, **kwargs)
    return start


def wait_log(proxy: ProxyProcess, pattern: str, timeout: float = 10.0) -> str:
    return wait_until(lambda: (m := re.search(pattern, proxy.log_text())) and m[0], timeout,
                      what=f"/{pattern}/ in {proxy.name}'s log")


def send_and_wait(proxy: ProxyProcess, fake: FakeMlflow) -> dict:
    """Sends one request through the proxy; the headers of the export that delivered it."""
    request, ids = numbered_request(3)
    status, _ = post(proxy.host, proxy.port, request.SerializeToString())
    assert status == 200
    wait_until(lambda: set(ids) <= set(fake.delivered_span_ids()), 15,
               what=f"spans {ids} at the fake MLflow")
    export = next(e for e in fake.delivered() if ids[0] in e.span_ids())
    return {k.lower(): v for k, v in export.headers.items()}


def upstream_info(proxy: ProxyProcess) -> dict:
    metrics = scrape(proxy)
    samples = [dict(labels) for (name, labels), value in metrics.samples.items()
               if name == "otlp_mlflow_proxy_upstream_mlflow_info" and value == 1]
    assert len(samples) == 1, metrics.text
    return samples[0]


@pytest.mark.parametrize("version, gzip", [("3.6.0", False), ("3.6.5", False), ("3.7.0", True),
                                           ("3.7.0rc1", True), ("3.10.2", True)])
def test_gzip_only_to_mlflow_that_decodes_it(fakes, proxies, version, gzip):
    fake = fakes(version)
    proxy = proxies(fake.url)
    line = wait_log(proxy, rf"MLflow {re.escape(version)} at {re.escape(fake.url)}; sending \S+")
    assert line.endswith("gzip" if gzip else "uncompressed"), line
    headers = send_and_wait(proxy, fake)
    assert headers.get("content-encoding") == ("gzip" if gzip else None), headers
    assert all(e.status == 200 for e in fake.exports), [e.status for e in fake.exports]
    assert upstream_info(proxy) == {"version": version, "accepts_gzip": "true" if gzip else "false"}
    gzipped = scrape(proxy).value("otlp_mlflow_proxy_upstream_gzip_requests_total")
    assert gzipped == (1 if gzip else 0)


def test_compression_none_and_gzip_override_the_version(fakes, proxies):
    new = fakes("3.7.0")
    plain = proxies(new.url, compression="none")
    wait_log(plain, r"MLflow 3\.7\.0 at \S+; sending uncompressed \(exporter.compression: none\)")
    assert "content-encoding" not in send_and_wait(plain, new)

    old = fakes("3.6.0", decodes_gzip=True)  # a patched build: the user knows better
    forced = proxies(old.url, compression="gzip")
    wait_log(forced, r"exporter.compression is gzip, but MLflow 3\.6\.0 cannot decode gzip")
    assert send_and_wait(forced, old).get("content-encoding") == "gzip"


def test_check_config_shows_the_compression(proxy_binary, tmp_path):
    import subprocess
    path = tmp_path / "proxy.yaml"
    path.write_text("mlflow: {url: 'http://127.0.0.1:5000', experiment_id: '1'}\n"
                    "exporter: {compression: none}\n")
    out = subprocess.run([str(proxy_binary), "--config", str(path), "--check-config"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^exporter:\n(  .*\n)*  compression: none$", out.stdout, re.M), out.stdout
    path.write_text("mlflow: {url: 'http://127.0.0.1:5000', experiment_id: '1'}\n"
                    "exporter: {compression: brotli}\n")
    out = subprocess.run([str(proxy_binary), "--config", str(path), "--check-config"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "exporter.compression: expected auto, gzip or none, got \"brotli\"" in out.stderr


def test_unreachable_at_start_starts_anyway_and_reads_the_version_later(fakes, proxies):
    port = free_port()
    proxy = proxies(f"http://127.0.0.1:{port}")  # nothing listens there yet
    wait_log(proxy, r"version at \S+ is not known yet .*sending uncompressed until it answers")
    assert upstream_info(proxy) == {"version": "unknown", "accepts_gzip": "false"}
    request, ids = numbered_request(3)
    status, _ = post(proxy.host, proxy.port, request.SerializeToString())
    assert status == 200  # queued while MLflow is down
    fake = fakes("3.7.0", port=port)
    wait_until(lambda: set(ids) <= set(fake.delivered_span_ids()), 20, what="the queued spans")
    wait_log(proxy, rf"MLflow 3\.7\.0 at http://127\.0\.0\.1:{port}; sending gzip")
    assert send_and_wait(proxy, fake).get("content-encoding") == "gzip"
    assert upstream_info(proxy)["version"] == "3.7.0"


def test_the_version_is_read_again_after_an_outage(fakes, proxies):
    port = free_port()
    old = fakes("3.6.0", port=port)
    proxy = proxies(old.url)
    wait_log(proxy, r"MLflow 3\.6\.0 at \S+; sending uncompressed")
    assert "content-encoding" not in send_and_wait(proxy, old)
    old.stop()
    # The health probe notices the outage; /version is read until it answers again.
    wait_log(proxy, r"version at \S+ is not known yet \(GET /version: connect")
    new = fakes("3.7.0", port=port)  # upgraded meanwhile
    wait_log(proxy, r"MLflow 3\.7\.0 at \S+ \(was 3\.6\.0\); sending gzip")
    assert send_and_wait(proxy, new).get("content-encoding") == "gzip"
    assert upstream_info(proxy) == {"version": "3.7.0", "accepts_gzip": "true"}


def test_a_refused_gzip_body_is_sent_again_uncompressed(fakes, proxies):
    # A router answers /version for a newer MLflow than the one behind it.
    fake = fakes("3.8.0", decodes_gzip=False)
    proxy = proxies(fake.url)
    wait_log(proxy, r"MLflow 3\.8\.0 at \S+; sending gzip")
    headers = send_and_wait(proxy, fake)
    assert "content-encoding" not in headers
    assert [e.status for e in fake.exports] == [400, 200]
    assert fake.exports[0].headers.get("Content-Encoding") == "gzip"
    wait_log(proxy, r"answered 400 to a gzip body although GET /version said 3\.8\.0")
    # /version is read again, says 3.8.0 again: it stays uncompressed, no second refusal.
    wait_log(proxy, r"MLflow 3\.8\.0 at \S+; sending uncompressed \(it refused a gzip body before\)")
    assert "content-encoding" not in send_and_wait(proxy, fake)
    assert [e.status for e in fake.exports] == [400, 200, 200]
    assert scrape(proxy).value("otlp_mlflow_proxy_upstream_gzip_refused_total") == 1
    assert scrape(proxy).value("otlp_mlflow_proxy_dead_lettered_spans_total") == 0
    assert upstream_info(proxy) == {"version": "3.8.0", "accepts_gzip": "false"}


@pytest.mark.parametrize("answer", ["<!doctype html><p>MLflow</p>", "", "three point seven"])
def test_an_answer_that_is_no_version_means_no_gzip(fakes, proxies, answer):
    fake = fakes(answer)
    proxy = proxies(fake.url)
    wait_log(proxy, r"answered GET /version with .*, not a version; sending uncompressed")
    assert "content-encoding" not in send_and_wait(proxy, fake)
    assert upstream_info(proxy) == {"version": "unknown", "accepts_gzip": "false"}
    assert proxy.running()
