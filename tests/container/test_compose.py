"""deploy/compose.yaml: valid for docker-compose, and its proxy service brought up from the image
under test. The example's other services (MLflow, the agent) come from registry images that CI
cannot pull, so the service runs against the tests' real MLflow instead: an override file moves
it onto the host's network with ports of its own and leaves the rest of its definition (the
experiment, the spool volume, the stop grace period) as the file has it."""
from __future__ import annotations

import subprocess
import uuid

import yaml

from support.docker import Container, docker
from support.net import free_port, wait_until
from support.otel_clients import send_koog_trace
from support.proxy_process import REPO_ROOT

COMPOSE = REPO_ROOT / "deploy" / "compose.yaml"


def compose(*args: str, files=(COMPOSE,), project: str | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess:
    command = ["docker-compose", *(["-p", project] if project else [])]
    for path in files:
        command += ["-f", str(path)]
    result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_compose_file_is_valid_and_runs_the_proxy_as_the_agents_sidecar():
    config = yaml.safe_load(compose("config").stdout)
    proxy = config["services"]["proxy"]
    assert proxy["network_mode"] == "service:agent"
    assert proxy["depends_on"]["mlflow"]["condition"] == "service_healthy"
    # docker-compose 1.29 renders volumes as "source:target:mode", newer ones as mappings.
    targets = [v.split(":")[1] if isinstance(v, str) else v["target"] for v in proxy["volumes"]]
    assert "/var/lib/otlp-mlflow-proxy" in targets, proxy["volumes"]


def test_compose_proxy_service_comes_up_healthy_delivers_and_stops(image, mlflow, tmp_path):
    project = f"omp-compose-{uuid.uuid4().hex[:8]}"
    ports = {"http": free_port(), "grpc": free_port(), "admin": free_port()}
    override = tmp_path / "compose.override.yaml"
    override.write_text(yaml.safe_dump({"services": {"proxy": {
        "image": image,
        "network_mode": "host",
        "environment": {
            "MLFLOW_TRACKING_URI": mlflow.url,
            "OTLP_MLFLOW_PROXY_LISTEN": f"127.0.0.1:{ports['http']}",
            "OTLP_MLFLOW_PROXY_GRPC_LISTEN": f"127.0.0.1:{ports['grpc']}",
            "OTLP_MLFLOW_PROXY_ADMIN_LISTEN": f"127.0.0.1:{ports['admin']}"},
        "healthcheck": {"interval": "1s", "test": [
            "CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{ports['admin']} && printf "
            "'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]}}}}))
    files = (COMPOSE, override)
    try:
        compose("up", "-d", "--no-deps", "--no-build", "proxy", files=files, project=project)
        box = Container(compose("ps", "-q", "proxy", files=files, project=project).stdout.strip())
        assert wait_until(lambda: box.health() == "healthy", timeout=60), box.logs()
        sent = send_koog_trace(f"http://127.0.0.1:{ports['http']}")
        got = mlflow.wait_for_spans(None, sent.trace_id, 6, timeout=30, diagnostics=box.logs)
        # The experiment is the one compose.yaml names.
        assert got.experiment_id == mlflow.get_experiment_by_name("example-agent")["experiment_id"]
        assert any(m["Destination"] == "/var/lib/otlp-mlflow-proxy" and m["Type"] == "volume"
                   for m in box.inspect()["Mounts"])
        compose("stop", "proxy", files=files, project=project)
        assert box.state()["ExitCode"] == 0, box.logs()
    finally:
        compose("down", "-v", files=files, project=project)
    assert docker("volume", "ls", "-q", "--filter", f"name={project}").stdout.strip() == ""
