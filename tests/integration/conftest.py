"""Integration tests: the proxy binary against test doubles. Shared fixtures (start_proxy,
mlflow_server, unique_name, free ports) live in tests/conftest.py; tests here are marked
`integration` automatically."""
from __future__ import annotations

import json

import pytest

from support.fake_mlflow import FakeMlflow
from support.proxy_process import ProxyProcess


@pytest.fixture
def fake_mlflow():
    """A scriptable fake MLflow (tests/support/fake_mlflow.py), started and stopped per test."""
    fake = FakeMlflow().start()
    yield fake
    fake.accepting.set()  # a test may have paused it; stopping must not wait on a paused fake
    fake.silent.clear()
    fake.stop()


@pytest.fixture
def proxy_teardown() -> str:
    """How proxy_factory ends the proxies a test left running: "stop" (SIGTERM, drain, exit code
    checked) or "kill" (SIGKILL; a module whose tests leave MLflow failing overrides it)."""
    return "stop"


@pytest.fixture
def proxy_factory(tmp_path, proxy_binary, fake_mlflow, proxy_log_report, proxy_teardown):
    """proxy_factory(config=None, *, name=None, **kwargs) -> a started ProxyProcess in front of
    fake_mlflow. config (a dict) is written as a file (JSON is YAML); kwargs go to ProxyProcess
    (mlflow_url defaults to the fake). Log tails go into a failing test's report."""
    started = proxy_log_report([])

    def start(config: dict | None = None, *, name: str | None = None, **kwargs) -> ProxyProcess:
        name = name or f"proxy{len(started)}"
        if config is not None:
            path = tmp_path / f"{name}.yaml"
            path.write_text(json.dumps(config))
            kwargs["config"] = path
        kwargs.setdefault("mlflow_url", fake_mlflow.url)
        kwargs.setdefault("binary", proxy_binary)
        proxy = ProxyProcess(tmp_path, name=name, **kwargs)
        started.append(proxy)
        return proxy.start()

    yield start
    for proxy in started:
        if proxy.running():
            proxy.kill() if proxy_teardown == "kill" else proxy.stop()
