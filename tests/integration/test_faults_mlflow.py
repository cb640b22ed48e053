"""Fault tests against a real MLflow server: MLflow stopped and restarted in the middle of a load,
and the proxy SIGKILLed under load with a disk spool. Every span the proxy acknowledged must be
in MLflow exactly once."""
from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest

from support.delivery import LoadSender, mlflow_span_ids
from support.mlflow_server import MlflowServer
from support.net import free_port, wait_until
from support.proxy_process import ProxyProcess

FAST_RETRY = {"initial_backoff": "50ms", "max_backoff": "1s"}


@pytest.fixture
def proxies(tmp_path, proxy_binary):
    started: list[ProxyProcess] = []

    def start(mlflow_url: str, config: dict, name: str) -> ProxyProcess:
        path = tmp_path / f"{name}.yaml"
        path.write_text(json.dumps(config))
        proxy = ProxyProcess(tmp_path, binary=proxy_binary, mlflow_url=mlflow_url, config=path,
                             name=name, stop_timeout=60)
        started.append(proxy)
        return proxy.start()

    yield start
    for proxy in started:
        if proxy.running():
            proxy.kill()


def assert_exactly_once_in_mlflow(client, experiment_name: str, acknowledged: list[str],
                                  timeout: float = 120) -> None:
    experiment_id = wait_until(lambda: client.experiment_id_by_name(experiment_name), 30,
                               what=f"experiment {experiment_name}")
    traces = len(acknowledged) // 3  # every request is one trace of 3 spans
    wait_until(lambda: len(client.trace_ids(experiment_id)) >= traces, timeout,
               what=f"{traces} traces in MLflow")
    stored = Counter(mlflow_span_ids(client, experiment_id))
    missing = set(acknowledged) - set(stored)
    assert not missing, f"{len(missing)} acknowledged spans missing from MLflow"
    duplicated = [sid for sid, n in stored.items() if n > 1]
    assert not duplicated, f"spans stored more than once: {duplicated[:5]}"


@pytest.mark.skipif(os.environ.get("PROXY_SANITIZED") == "1",
                    reason="two MLflow starts: too slow for the sanitizer runs, and the SIGKILL "
                           "test covers the same proxy paths")
def test_mlflow_stopped_mid_load_and_restarted_loses_nothing(proxies, tmp_path, unique_name):
    port = free_port()  # fixed for both runs, so the proxy's URL stays valid
    server = MlflowServer(tmp_path / "mlflow", port=port, warmup=False).start()
    try:
        name = unique_name("restart")
        proxy = proxies(server.url, {"mlflow": {"experiment_name": name},
                                     "exporter": {"retry": FAST_RETRY}}, name="proxy")
        load = LoadSender(proxy.host, proxy.port, threads=2, pause=0.05).start()
        time.sleep(2)
        server.stop()
        time.sleep(3)
        server.start()
        time.sleep(1)
        load.stop()
        assert load.acknowledged, load.statuses
        assert_exactly_once_in_mlflow(server, name, load.acknowledged)
        assert proxy.stop(timeout=60) == 0
    finally:
        server.stop()


def test_sigkill_under_load_with_disk_spool_delivers_every_acknowledged_span(
        proxies, tmp_path, mlflow, unique_name):
    name = unique_name("sigkill")
    config = {"mlflow": {"experiment_name": name},
              "queue": {"durability": "disk", "state_dir": str(tmp_path / "state"),
                        "fsync": "always"},
              "exporter": {"retry": FAST_RETRY}}
    proxy = proxies(mlflow.url, config, name="killed")
    load = LoadSender(proxy.host, proxy.port, threads=4, pause=0.05).start()
    time.sleep(2)
    proxy.kill()
    load.stop()
    assert load.acknowledged, load.statuses
    restarted = proxies(mlflow.url, config, name="restarted")
    assert_exactly_once_in_mlflow(mlflow, name, load.acknowledged)
    assert restarted.stop(timeout=60) == 0
