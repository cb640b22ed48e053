"""Shared fixtures for the Python integration and end-to-end tests.

Environment:
  PROXY_BIN           proxy binary (default <repo>/build/src/otlp-mlflow-proxy)
  E2E_REQUIRE_PROXY   1: a missing binary fails the proxy tests instead of skipping them
  E2E_MLFLOW_URL      use this running MLflow server instead of starting one
  E2E_MLFLOW_WORKERS  uvicorn workers for the started server (default 1)
  MLFLOW_BIN          mlflow executable (default: the one next to the running python)
"""
from __future__ import annotations

import os
import re
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import support` without pytest.ini

from support.mlflow_server import MlflowClient, MlflowServer  # noqa: E402
from support.proxy_process import ProxyError, ProxyProcess, proxy_bin  # noqa: E402

_PROXIES = pytest.StashKey[list]()
_MLFLOW = pytest.StashKey[object]()


def pytest_collection_modifyitems(config, items):
    """Directory markers: tests under tests/e2e are `e2e`, under tests/integration `integration`."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "e2e" in parts:
            item.add_marker(pytest.mark.e2e)
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """One real MLflow server (SQLite store) for the session; tests use distinct experiments."""
    if url := os.environ.get("E2E_MLFLOW_URL"):
        client = MlflowClient(url)
        if not client.health():
            pytest.fail(f"E2E_MLFLOW_URL={url} is not healthy")
        yield client
        return
    workers = int(os.environ.get("E2E_MLFLOW_WORKERS", "1"))
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"), workers=workers)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow(mlflow_server, request):
    """mlflow_server, remembered so a failing test's report carries the server's log tail."""
    request.node.stash[_MLFLOW] = mlflow_server
    return mlflow_server


@pytest.fixture
def unique_name(request):
    """unique_name("prefix") -> "prefix-<test name>-<8 hex>", a fresh experiment name."""
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60]

    def make(prefix: str = "e2e") -> str:
        return f"{prefix}-{test}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def proxy_log_report(request):
    """proxy_log_report(list) -> the list: proxies started by a test's own fixture, whose log
    tails then go into the report when the test fails."""
    def track(started: list) -> list:
        request.node.stash[_PROXIES] = started
        return started
    return track


@pytest.fixture(scope="session")
def proxy_binary() -> Path:
    """The proxy binary; skips (or fails with E2E_REQUIRE_PROXY=1) when it is not built."""
    path = proxy_bin()
    if not (path.exists() and os.access(path, os.X_OK)):
        msg = (f"proxy binary {path} not found: build it (cmake -S . -B build -G Ninja && "
               f"ninja -C build) or set PROXY_BIN")
        if os.environ.get("E2E_REQUIRE_PROXY") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture
def start_proxy(request, proxy_binary, mlflow_server, tmp_path):
    """start_proxy(**kwargs) -> a started ProxyProcess, stopped (SIGTERM, exit code checked) at
    teardown. kwargs go to ProxyProcess; mlflow_url defaults to the session's MLflow server;
    config may be a path, YAML text (str containing a newline) or a dict (dumped as YAML)."""
    started: list[ProxyProcess] = []
    request.node.stash[_PROXIES] = started
    request.node.stash[_MLFLOW] = mlflow_server

    def start(**kwargs) -> ProxyProcess:
        kwargs.setdefault("mlflow_url", mlflow_server.url)
        kwargs.setdefault("binary", proxy_binary)
        kwargs.setdefault("name", f"proxy{len(started)}")
        config = kwargs.get("config")
        if isinstance(config, dict) or (isinstance(config, str) and "\n" in config):
            if isinstance(config, dict):
                import yaml
                config = yaml.safe_dump(config, sort_keys=False)
            path = tmp_path / f"{kwargs['name']}.yaml"
            path.write_text(config)
            kwargs["config"] = path
        proxy = ProxyProcess(tmp_path, **kwargs)
        started.append(proxy)
        return proxy.start()

    yield start

    errors = []
    for proxy in reversed(started):
        try:
            if proxy.proc is not None and proxy.returncode is None:
                proxy.stop()
        except ProxyError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the proxies' and MLflow's log tails to a failing test's report."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        for proxy in item.stash.get(_PROXIES, []):
            report.sections.append((f"{proxy.name} log ({proxy.log_path})", proxy.log_tail(60)))
        server = item.stash.get(_MLFLOW, None)
        if isinstance(server, MlflowServer):
            report.sections.append((f"mlflow server log ({server.log_path})", server.log_tail(30)))
    return report
