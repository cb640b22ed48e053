"""The container image as users run it (scripts/test-packages.sh builds it and runs this file):
its own HEALTHCHECK, the non-root user, no apt leftovers and the size above its base;
configured by environment variables alone, traces over OTLP/HTTP and gRPC read back from a real
MLflow; a mounted configuration with routes, reloaded by SIGHUP; the spool on a volume through
`docker kill` and `docker start` with no acknowledged span lost; `docker stop` draining.

Containers use the host's network (the tests' MLflow and fake MLflow are on 127.0.0.1), each on
ports of its own; the one checking the image's defaults has no network at all."""
from __future__ import annotations

import json
import os
import re
import threading
import time

import pytest

from support.delivery import LoadSender, numbered_request, post
from support.docker import docker
from support.fake_mlflow import FakeMlflow, ScriptedAnswer
from support.masking import unmasked_leaves
from support.net import free_port, wait_until
from support.otel_clients import send_koog_trace

KOOG_SPANS = 6
SPOOL = "/var/lib/otlp-mlflow-proxy"
CONFIG = "/etc/otlp-mlflow-proxy/config.yaml"
MAX_ADDED_BYTES = 60_000_000  # the layers above debian:12-slim
FAST_RETRY = {"initial_backoff": "50ms", "max_backoff": "500ms"}


class Proxy:
    """A proxy container on the host's network with ports of its own and a spool volume."""

    def __init__(self, box, ports: dict[str, int]):
        self.box = box
        self.ports = ports

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    def healthy(self, timeout: float = 60) -> None:
        assert wait_until(lambda: self.box.health() == "healthy", timeout=timeout,
                          what="a healthy container"), self.box.logs()


@pytest.fixture
def start_proxy(containers, image, unique_name, tmp_path):
    """start_proxy(env=None, config=None) -> a Proxy; config (YAML text) is mounted over the
    image's configuration file."""
    def start(env: dict[str, str] | None = None, config: str | None = None) -> Proxy:
        ports = {"http": free_port(), "grpc": free_port(), "admin": free_port()}
        name = unique_name("omp-proxy")
        args = ["-v", f"{name}-spool:{SPOOL}",
                "-e", f"OTLP_MLFLOW_PROXY_LISTEN=127.0.0.1:{ports['http']}",
                "-e", f"OTLP_MLFLOW_PROXY_GRPC_LISTEN=127.0.0.1:{ports['grpc']}",
                "-e", f"OTLP_MLFLOW_PROXY_ADMIN_LISTEN=127.0.0.1:{ports['admin']}",
                # The image's HEALTHCHECK probes port 13133; on the host's network each test
                # proxy has its own admin port, and the probe moves with it.
                "--health-cmd", "bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d && printf \"GET /healthz "
                "HTTP/1.0\\r\\n\\r\\n\" >&3 && head -1 <&3 | grep -q \" 200 \"'" % ports["admin"],
                "--health-interval", "1s"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        if config is not None:
            path = tmp_path / f"{name}.yaml"
            path.write_text(config)
            path.chmod(0o644)
            args += ["-v", f"{path}:{CONFIG}:ro"]
        box = containers(image, *args, name=name, volumes=[f"{name}-spool"])
        proxy = Proxy(box, ports)
        proxy.config_path = tmp_path / f"{name}.yaml"
        return proxy
    return start


@pytest.fixture
def fake_mlflow():
    fake = FakeMlflow().start()
    yield fake
    fake.accepting.set()
    fake.stop()


def test_image_defaults_healthy_by_its_own_healthcheck_as_non_root(containers, image):
    # No network: the image's own HEALTHCHECK on its default admin port, nothing reachable.
    box = containers(image, network="none")
    assert wait_until(lambda: box.health() == "healthy", timeout=60,
                      what="the image's HEALTHCHECK"), box.logs()
    assert box.exec("id", "-u").stdout.strip() == "10001"
    assert box.exec("id", "-un").stdout.strip() == "otlp-proxy"
    assert " otlp-proxy otlp-proxy " in box.exec("ls", "-ld", SPOOL).stdout
    config = box.inspect()["Config"]
    assert config["User"] == "otlp-proxy"
    assert SPOOL in config["Volumes"]
    assert {"4317/tcp", "4318/tcp", "13133/tcp"} <= set(config["ExposedPorts"])
    log = box.logs()
    assert "0.0.0.0:4318" in log and "0.0.0.0:4317" in log, log


def test_image_has_no_apt_leftovers_and_adds_under_60_mb_to_its_base(image):
    leftovers = docker("run", "--rm", "--network", "none", "--entrypoint", "bash", image, "-c",
                       "ls -A /var/lib/apt/lists /var/cache/apt/archives | grep -v -e '^/' "
                       "-e '^$' -e '^partial$' -e '^lock$' || true").stdout.strip()
    assert leftovers == "", leftovers
    size = lambda name: int(docker("image", "inspect", "-f", "{{.Size}}", name).stdout)  # noqa: E731
    added = size(image) - size(os.environ.get("SLIM_IMAGE", "debian:12-slim"))
    assert added < MAX_ADDED_BYTES, f"{added / 1e6:.1f} MB above the base"


def assert_structure_kept_and_masked(messages, got) -> None:
    assert isinstance(messages, list) and messages[0]["role"] == "user", got.dump()
    assert unmasked_leaves(messages) == [], got.dump()
    assert "What is" not in json.dumps(messages), got.dump()


def test_env_only_configuration_delivers_http_and_grpc_traces_to_mlflow(start_proxy, mlflow,
                                                                        unique_name):
    experiment = unique_name("container")
    proxy = start_proxy(env={"MLFLOW_TRACKING_URI": mlflow.url,
                             "MLFLOW_EXPERIMENT_NAME": experiment})
    proxy.healthy()
    http_trace = send_koog_trace(proxy.http)
    grpc_trace = send_koog_trace(f"127.0.0.1:{proxy.ports['grpc']}", protocol="grpc")
    assert http_trace.all_exports_succeeded and grpc_trace.all_exports_succeeded
    for sent in (http_trace, grpc_trace):
        got = mlflow.wait_for_spans(None, sent.trace_id, KOOG_SPANS, timeout=30,
                                    require_complete=True, diagnostics=proxy.box.logs)
        assert got.experiment_id == mlflow.get_experiment_by_name(experiment)["experiment_id"]
        # The image ships the safe default: the messages keep their structure (MLflow hands the
        # JSON back parsed), every text leaf masked to its size.
        chat = got.span("chat gpt-4o")
        assert_structure_kept_and_masked(chat.attributes["gen_ai.input.messages"], got)
        assert "What is" not in json.dumps(chat.attributes), got.dump()


def routes_config(verbose_experiment: str) -> str:
    return (f"queue:\n  durability: disk\n  state_dir: {SPOOL}\n"
            f"routes:\n  - name: reporting\n    match:\n      resource:\n"
            f"        service.name: report-agent\n"
            f"    experiment_name: {verbose_experiment}\n    policy: verbose\n"
            f"default_route:\n  policy: default\n")


def test_mounted_config_routes_and_sighup_reloads_it(start_proxy, mlflow, unique_name):
    routed, default, reloaded = (unique_name(p) for p in ("routed", "default", "reloaded"))
    proxy = start_proxy(env={"MLFLOW_TRACKING_URI": mlflow.url, "MLFLOW_EXPERIMENT_NAME": default},
                        config=routes_config(routed))
    proxy.healthy()
    report = send_koog_trace(proxy.http, service_name="report-agent")
    other = send_koog_trace(proxy.http, service_name="other-agent")
    got = mlflow.wait_for_spans(None, report.trace_id, KOOG_SPANS, timeout=30,
                                diagnostics=proxy.box.logs)
    assert got.experiment_id == mlflow.get_experiment_by_name(routed)["experiment_id"]
    # verbose: the prompt kept (MLflow hands the JSON text back parsed).
    assert "What is 6 * 7?" in json.dumps(got.span("chat gpt-4o").attributes["gen_ai.input.messages"])
    got = mlflow.wait_for_spans(None, other.trace_id, KOOG_SPANS, timeout=30,
                                diagnostics=proxy.box.logs)
    assert got.experiment_id == mlflow.get_experiment_by_name(default)["experiment_id"]
    assert_structure_kept_and_masked(got.span("chat gpt-4o").attributes["gen_ai.input.messages"], got)

    # Written in place: the bind mount follows the file, as with a kubelet-updated ConfigMap.
    with open(proxy.config_path, "r+") as f:
        f.seek(0)
        f.write(routes_config(reloaded))
        f.truncate()
    docker("kill", "-s", "HUP", proxy.box.name)
    assert wait_until(lambda: "reload applied" in proxy.box.logs(), timeout=15), proxy.box.logs()
    after = send_koog_trace(proxy.http, service_name="report-agent")
    got = mlflow.wait_for_spans(None, after.trace_id, KOOG_SPANS, timeout=30,
                                diagnostics=proxy.box.logs)
    assert got.experiment_id == mlflow.get_experiment_by_name(reloaded)["experiment_id"]


def fault_config() -> str:
    return (f"queue:\n  durability: disk\n  state_dir: {SPOOL}\n  fsync: always\n"
            f"exporter:\n  retry:\n    initial_backoff: {FAST_RETRY['initial_backoff']}\n"
            f"    max_backoff: {FAST_RETRY['max_backoff']}\n")


def test_spool_on_a_volume_survives_docker_kill_and_start(start_proxy, fake_mlflow):
    # MLflow failing at first: the kill finds acknowledged spans queued in the spool.
    fake_mlflow.script = [ScriptedAnswer(503, "{}") for _ in range(10_000)]
    proxy = start_proxy(env={"MLFLOW_TRACKING_URI": fake_mlflow.url, "MLFLOW_EXPERIMENT_ID": "1"},
                        config=fault_config())
    proxy.healthy()
    load = LoadSender("127.0.0.1", proxy.ports["http"], threads=3).start()
    time.sleep(2)
    docker("kill", proxy.box.name)  # SIGKILL: no drain, no flush
    load.stop()
    assert len(load.acknowledged) > 0, load.statuses
    assert proxy.box.state()["Status"] == "exited"

    fake_mlflow.script = []
    docker("start", proxy.box.name)
    wait_until(lambda: set(load.acknowledged) <= set(fake_mlflow.delivered_span_ids()), 60,
               what="every acknowledged span at the fake MLflow after docker start")
    recovered = re.findall(r"(\d+) undelivered spans in \d+ records recovered", proxy.box.logs())
    assert len(recovered) == 2 and int(recovered[-1]) > 0, proxy.box.logs()


def test_docker_stop_drains_the_backlog_and_exits_0(start_proxy, fake_mlflow):
    proxy = start_proxy(env={"MLFLOW_TRACKING_URI": fake_mlflow.url, "MLFLOW_EXPERIMENT_ID": "1"},
                        config=fault_config())
    proxy.healthy()
    fake_mlflow.accepting.clear()  # exports wait: a backlog builds up
    sent = []
    for _ in range(5):
        request, ids = numbered_request(3)
        assert post("127.0.0.1", proxy.ports["http"], request.SerializeToString())[0] == 200
        sent += ids
    threading.Timer(2.0, fake_mlflow.accepting.set).start()  # MLflow answers again mid-stop
    started = time.monotonic()
    docker("stop", "-t", "30", proxy.box.name, timeout=60)
    assert proxy.box.state()["ExitCode"] == 0, proxy.box.logs()
    assert time.monotonic() - started < 25, "docker stop had to kill the proxy"
    assert set(sent) <= set(fake_mlflow.delivered_span_ids())
    assert "drained: every acknowledged span was delivered" in proxy.box.logs(), proxy.box.logs()
