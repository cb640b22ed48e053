"""The container image as a user runs it (scripts/docker-smoke.sh builds it and runs this file;
not part of the CI test command, which has no Docker daemon): configured only by environment
variables, healthy by its own HEALTHCHECK, running as the non-root user with the spool on a
volume, traces from the OTel SDK over HTTP and gRPC read back from a real MLflow, SIGHUP
reloading, and `docker stop` draining to exit code 0.

    IMAGE=otlp-mlflow-proxy:dev python -m pytest tests/container
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

from support.net import free_port, wait_until
from support.otel_clients import send_koog_trace

IMAGE = os.environ.get("IMAGE", "otlp-mlflow-proxy:dev")
KOOG_SPANS = 6


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=timeout)


class Container:
    def __init__(self, name: str, ports: dict[str, int]):
        self.name = name
        self.ports = ports

    def inspect(self) -> dict:
        return json.loads(docker("inspect", self.name).stdout)[0]

    def health(self) -> str:
        return self.inspect()["State"].get("Health", {}).get("Status", "none")

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr


@pytest.fixture
def container(mlflow, unique_name):
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker daemon: start one (scripts/docker-smoke.sh does) or skip this file")
    name = f"omp-test-{uuid.uuid4().hex[:8]}"
    volume = f"{name}-spool"
    ports = {"http": free_port(), "grpc": free_port(), "admin": free_port()}
    experiment = unique_name("container")
    docker("volume", "create", volume)
    # Host networking: the daemon here has no bridge; the ports are set the way a user would.
    docker("run", "-d", "--name", name, "--network", "host", "-v", f"{volume}:/var/lib/otlp-mlflow-proxy",
           "-e", f"MLFLOW_TRACKING_URI={mlflow.url}",
           "-e", f"MLFLOW_EXPERIMENT_NAME={experiment}",
           "-e", f"OTLP_MLFLOW_PROXY_LISTEN=127.0.0.1:{ports['http']}",
           "-e", f"OTLP_MLFLOW_PROXY_GRPC_LISTEN=127.0.0.1:{ports['grpc']}",
           "-e", f"OTLP_MLFLOW_PROXY_ADMIN_LISTEN=127.0.0.1:{ports['admin']}",
           # The image's HEALTHCHECK probes 13133; with host networking and a moved admin port,
           # the probe is moved with it, as a user running several proxies on one host would.
           "--health-cmd", "bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d && printf \"GET /healthz "
           "HTTP/1.0\\r\\n\\r\\n\" >&3 && head -1 <&3 | grep -q \" 200 \"'" % ports["admin"],
           "--health-interval", "2s", IMAGE)
    box = Container(name, ports)
    box.experiment = experiment
    try:
        yield box
    finally:
        print(box.logs()[-4000:])
        docker("rm", "-f", name, check=False)
        docker("volume", "rm", volume, check=False)


def test_image_runs_healthy_as_non_root_and_delivers_http_and_grpc_traces(container, mlflow):
    assert wait_until(lambda: container.health() == "healthy", timeout=60), container.logs()
    assert docker("exec", container.name, "id", "-u").stdout.strip() == "10001"
    spool = docker("exec", container.name, "ls", "-ld", "/var/lib/otlp-mlflow-proxy").stdout
    assert " otlp-proxy otlp-proxy " in spool, spool

    http_trace = send_koog_trace(f"http://127.0.0.1:{container.ports['http']}")
    grpc_trace = send_koog_trace(f"127.0.0.1:{container.ports['grpc']}", protocol="grpc")
    assert http_trace.all_exports_succeeded and grpc_trace.all_exports_succeeded
    for sent in (http_trace, grpc_trace):
        got = mlflow.wait_for_spans(None, sent.trace_id, KOOG_SPANS, timeout=30,
                                    require_complete=True, diagnostics=container.logs)
        experiment = mlflow.get_experiment_by_name(container.experiment)
        assert experiment and got.experiment_id == experiment["experiment_id"]
        # The image ships the safe default: content masked, only its size kept.
        chat = got.span("chat gpt-4o")
        assert chat.attributes["gen_ai.input.messages"].startswith("[masked: "), got.dump()
        assert "What is" not in json.dumps(chat.attributes), got.dump()


def test_sighup_reloads_and_docker_stop_drains_to_exit_code_0(container, mlflow):
    assert wait_until(lambda: container.health() == "healthy", timeout=60), container.logs()
    docker("kill", "-s", "HUP", container.name)
    assert wait_until(lambda: "reload" in container.logs().lower(), timeout=10), container.logs()
    sent = send_koog_trace(f"http://127.0.0.1:{container.ports['http']}")
    assert sent.all_exports_succeeded
    mlflow.wait_for_spans(None, sent.trace_id, KOOG_SPANS, timeout=30, diagnostics=container.logs)
    started = time.monotonic()
    docker("stop", "-t", "30", container.name)
    state = container.inspect()["State"]
    assert state["ExitCode"] == 0, container.logs()
    assert time.monotonic() - started < 30, "docker stop had to kill the proxy"
    assert "drained" in container.logs(), container.logs()
