"""Side-by-side benchmark: the proxy against the OpenTelemetry Collector doing the same job, and
agents exporting straight to MLflow against exporting through the proxy (issue 8).

    bench/compare.sh                       # builds what it needs, then runs this with the venv
    ~/.cache/otlp-mlflow-proxy/venv/bin/python bench/compare.py [--rounds 3] [--mlflow]

Core comparison (default): each system gets CPU 1 (`taskset -c 1`); the load generator and the
fake MLflow sink share CPU 0. For every round, scenario and system (the order of the systems
alternates between rounds) a fresh sink and a fresh system are started and measured:

  max spans/s     closed loop at full speed (--rate 0) for --duration seconds, then the time until
                  the sink holds every acknowledged span: spans / (load time + drain time). A span
                  is counted only once the sink has decoded it, so a queue that grows does not
                  count as throughput. Errors are reported; a run with errors is marked.
  CPU-s per 1M    utime+stime of the system (/proc/<pid>/stat) over the same window, per million
                  spans; spans per CPU-second is its inverse.
  peak RSS        VmHWM (/proc/<pid>/status) at the end of the run (both load phases).
  latency         p50/p99/p999 of the acknowledgement at a fixed 10k spans/s (open loop).

Scenarios: batched (50 spans per request, as the SDKs' batch processor sends), the same with
gzip, and one span per request (Koog before 1.0). Both hops are compressed alike, for both
systems: the gzip scenario gzips to the sink too, the others send plain. The median over the
rounds is reported.

--mlflow: a real MLflow server (SQLite), the load generator straight to it and through the proxy
(not pinned: MLflow is the bottleneck here), batched and one span per request. Reports the
agent-visible latency and the spans MLflow stored per second (counted in its database).

Writes compare.md, compare.csv and compare.png to --out (bench/results by default)."""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT_ID = "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

# The proxy's queue holds 256 MiB of encoded spans (queue.max_bytes default); the Collector's
# sending queue is given the same bound in bytes (sizer: bytes). Both keep the queue in memory.
QUEUE_BYTES = 256 * 1024 * 1024
# The proxy's exporter: 2 requests in flight, batches closed at 8192 spans or 10 ms (defaults);
# the Collector gets the same through its batch processor and 2 queue consumers.
EXPORT_CONCURRENCY = 2
BATCH_SPANS = 8192
BATCH_LINGER_MS = 10
# Distinct spans the load generator holds for an agent exporting straight to MLflow (SQLite
# stores well under 3,000 spans/s, so a 20 s run never reaches them; about 100 MB of bodies).
MLFLOW_DIRECT_DISTINCT_SPANS = 60_000


@dataclass(frozen=True)
class Scenario:
    name: str
    spans_per_request: int
    gzip: bool
    connections: int  # at full speed; enough that the system, not the client, is the limit


SCENARIOS = {
    "batched": Scenario("batched", 50, False, 8),
    "batched-gzip": Scenario("batched-gzip", 50, True, 8),
    "single": Scenario("single", 1, False, 16),
}

# The proxy's built-in content keys (src/policy/content_keys.cpp) as the redaction processor's
# key regexes, whole key, so the Collector masks the same attributes. Content events' fields
# (gen_ai.*.message events: content, message, arguments, tool_calls) are masked by the proxy only
# inside those events; the redaction processor has no event-name condition, so it masks those
# keys in every event (a superset: no loss of masking on its side).
_CONTENT_KEY_GLOBS = [
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.tool.definitions", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
    "gen_ai.prompt*", "gen_ai.completion*", "system_instructions", "koog.node.input",
    "koog.node.output", "koog.subgraph.input", "koog.subgraph.output", "koog.moderation.result",
    "koog.planner.*", "input.value", "output.value", "llm.input_messages*",
    "llm.output_messages*", "llm.prompts*", "tool.parameters", "traceloop.entity.input",
    "traceloop.entity.output", "mlflow.spanInputs", "mlflow.spanOutputs",
    # content event fields
    "content", "message", "message.*", "arguments", "tool_calls", "tool_calls.*",
    "gen_ai.event.content",
]


def _glob_to_regex(glob: str) -> str:
    out = "".join(".*" if c == "*" else ("\\." if c == "." else c) for c in glob)
    return f"^{out}$"


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} during startup:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} does not accept connections on port {port} after {timeout}s")


def pinned(cpu: str | None, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *cmd] if cpu is not None else cmd


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for pid {pid}")


class Managed:
    """A child process with its log in the run directory; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, cmd: list[str], workdir: Path, env: dict | None = None):
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self._log.write(("$ " + " ".join(cmd) + "\n").encode())
        self._log.flush()
        self.proc = subprocess.Popen(cmd, cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


class Sink(Managed):
    """bench-fake-sink: decodes every request, counts spans, checks the experiment header."""

    def __init__(self, binary: Path, workdir: Path, cpu: str | None):
        port_file = workdir / "sink.port"
        port_file.unlink(missing_ok=True)
        super().__init__("sink", pinned(cpu, [str(binary), "--listen", "127.0.0.1:0",
                                              "--port-file", str(port_file),
                                              "--require-header", "x-mlflow-experiment-id",
                                              "--threads", "1"]), workdir)
        deadline = time.monotonic() + 15
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake sink did not start:\n{self.log_path.read_text()}")
            time.sleep(0.02)
        self.port = int(port_file.read_text().strip())
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as r:
            return json.loads(r.read())


# ---------------------------------------------------------------------------------------------
# The two systems
# ---------------------------------------------------------------------------------------------

def proxy_config(path: Path, compression: str = "auto") -> Path:
    """Default policy (content masked, errors redacted), memory durability, default queue and
    exporter settings, written out so the run's configuration is on record. `compression`: the
    upstream's, "auto" (gzip to an MLflow of 3.7 or later) unless a scenario fixes it."""
    path.write_text(f"""# bench/compare.py: the proxy under test
queue:
  durability: memory
  max_bytes: {QUEUE_BYTES}
exporter:
  compression: {compression}
  concurrency: {EXPORT_CONCURRENCY}
  max_batch_spans: {BATCH_SPANS}
  batch_linger: {BATCH_LINGER_MS}ms
default_route:
  policy: default
log:
  level: warn
""")
    return path


def collector_config(path: Path, port: int, sink_url: str, compression: str) -> Path:
    patterns = "\n".join(f"      - '{_glob_to_regex(g)}'" for g in _CONTENT_KEY_GLOBS)
    path.write_text(f"""# bench/compare.py: the OpenTelemetry Collector doing the proxy's job
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
processors:
  # The values of the content keys are masked, every other attribute kept (the proxy's default
  # policy for content; the proxy writes "[masked: N bytes]", the processor "****").
  redaction:
    allow_all_keys: true
    blocked_key_patterns:
{patterns}
    summary: silent
  # The proxy's exporter closes a batch at {BATCH_SPANS} spans or after {BATCH_LINGER_MS} ms.
  batch:
    send_batch_size: {BATCH_SPANS}
    send_batch_max_size: {BATCH_SPANS}
    timeout: {BATCH_LINGER_MS}ms
exporters:
  otlphttp:
    traces_endpoint: {sink_url}/v1/traces
    headers:
      x-mlflow-experiment-id: "{EXPERIMENT_ID}"
    compression: {compression}   # as the proxy's exporter.compression in this scenario
    encoding: proto
    sending_queue:
      enabled: true
      sizer: bytes
      queue_size: {QUEUE_BYTES}
      num_consumers: {EXPORT_CONCURRENCY}
service:
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [redaction, batch]
      exporters: [otlphttp]
""")
    return path


def start_system(system: str, tools: "Tools", workdir: Path, sink: Sink,
                 cpu: str | None, scenario: Scenario) -> tuple[Managed, str]:
    port = free_port()
    # Both hops compressed alike: a gzip scenario gzips to the sink too, the others send plain.
    compression = "gzip" if scenario.gzip else "none"
    if system == "proxy":
        cmd = [str(tools.proxy), "--config",
               str(proxy_config(workdir / "proxy.yaml", compression)),
               "--listen", f"127.0.0.1:{port}", "--mlflow-url", sink.url,
               "--experiment-id", EXPERIMENT_ID, "--grpc-listen", "off", "--admin-listen", "off"]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OTLP_MLFLOW_PROXY_", "MLFLOW_"))}
    else:
        cmd = [str(tools.collector), "--config",
               str(collector_config(workdir / "collector.yaml", port, sink.url, compression))]
        env = dict(os.environ)
    proc = Managed(system, pinned(cpu, cmd), workdir, env)
    wait_port(port, proc.proc, system, proc.log_path)
    return proc, f"http://127.0.0.1:{port}/v1/traces"


# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------

@dataclass
class Tools:
    proxy: Path
    loadgen: Path
    sink: Path
    collector: Path | None


def loadgen(tools: Tools, url: str, *, rate: float, duration: float, spans_per_request: int,
            connections: int, gzip: bool, cpu: str | None, warmup: float = 0,
            headers: dict[str, str] | None = None, timeout: float | None = None,
            seed: int | None = None, distinct_requests: int | None = None) -> dict:
    cmd = [str(tools.loadgen), "--url", url, "--rate", str(rate), "--duration", str(duration),
           "--warmup", str(warmup), "--spans-per-request", str(spans_per_request),
           "--connections", str(connections), "--threads", "1", "--mix", "both"]
    if gzip:
        cmd.append("--gzip")
    for name, value in (headers or {}).items():
        cmd += ["--header", f"{name}={value}"]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    if distinct_requests is not None:
        cmd += ["--distinct-requests", str(distinct_requests)]
    out = subprocess.run(pinned(cpu, cmd), capture_output=True, text=True,
                         timeout=timeout or duration + warmup + 120, stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise RuntimeError(f"bench-loadgen failed ({out.returncode}): {out.stderr[-2000:]}")
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError(f"bench-loadgen printed no JSON: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    result = json.loads(lines[-1])
    # "bench-loadgen: N distinct requests of K spans": beyond N requests the ids repeat.
    pool = re.search(r"(\d+) distinct requests of (\d+) spans", out.stderr)
    result["distinct_spans"] = int(pool[1]) * int(pool[2]) if pool else None
    return result


def acked_spans(result: dict, spans_per_request: int) -> int:
    """Spans in requests answered 2xx: the loadgen's `spans` counts every request sent, `ok` the
    answered 2xx, and every request carries the same number of spans."""
    return int(result["ok"]) * spans_per_request


def wait_delivered(sink: Sink, base: int, expected: int, timeout: float) -> tuple[int, float]:
    """Polls the sink until it counted `expected` spans beyond `base`; (delivered, seconds)."""
    start = time.monotonic()
    delivered = 0
    while time.monotonic() - start < timeout:
        delivered = sink.stats()["spans"] - base
        if delivered >= expected:
            break
        time.sleep(0.01)
    return delivered, time.monotonic() - start


# ---------------------------------------------------------------------------------------------
# One measured run of one system
# ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    round: int
    scenario: str
    system: str
    max_spans_per_s: float = 0.0
    max_requests_per_s: float = 0.0
    acked_spans: int = 0
    delivered_spans: int = 0
    errors: int = 0
    drain_s: float = 0.0
    cpu_busy: float = 0.0  # CPU-seconds per wall second during the max run (1.0 = the whole core)
    cpu_s_per_million: float = 0.0
    spans_per_cpu_s: float = 0.0
    requests_per_cpu_s: float = 0.0
    peak_rss_mib: float = 0.0
    lat_rate: float = 0.0
    lat_p50_us: float = 0.0
    lat_p99_us: float = 0.0
    lat_p999_us: float = 0.0
    lat_errors: int = 0
    bad_header: int = 0
    decode_errors: int = 0
    notes: list[str] = field(default_factory=list)


def measure(system: str, scenario: Scenario, rnd: int, tools: Tools, args, workdir: Path) -> Run:
    run = Run(rnd, scenario.name, system)
    rundir = workdir / f"r{rnd}-{scenario.name}-{system}"
    rundir.mkdir(parents=True)
    sink = Sink(tools.sink, rundir, args.client_cpu)
    proc = None
    try:
        proc, url = start_system(system, tools, rundir, sink, args.system_cpu, scenario)
        common = dict(spans_per_request=scenario.spans_per_request, gzip=scenario.gzip,
                      cpu=args.client_cpu)
        # Warm-up: connections, allocator arenas, Go's heap and JIT-free code paths all settled.
        warm = loadgen(tools, url, rate=0, duration=args.warmup, connections=scenario.connections,
                       **common)
        wait_delivered(sink, 0, acked_spans(warm, scenario.spans_per_request), args.drain_timeout)

        # Maximum sustained rate: closed loop at full speed, then until delivered.
        base = sink.stats()["spans"]
        cpu0 = cpu_seconds(proc.pid)
        res = loadgen(tools, url, rate=0, duration=args.duration,
                      connections=scenario.connections, **common)
        # The loadgen's measured window, not its process's lifetime: it builds (and gzips) its
        # request pool first, seconds on a busy core, while the system under test idles.
        load_s = float(res["seconds"])
        run.acked_spans = acked_spans(res, scenario.spans_per_request)
        run.errors = int(res["errors"])
        run.delivered_spans, run.drain_s = wait_delivered(sink, base, run.acked_spans,
                                                          args.drain_timeout)
        cpu = cpu_seconds(proc.pid) - cpu0
        window = load_s + run.drain_s
        run.max_spans_per_s = run.delivered_spans / window
        run.max_requests_per_s = run.max_spans_per_s / scenario.spans_per_request
        run.cpu_busy = cpu / window
        if run.delivered_spans:
            run.cpu_s_per_million = cpu / run.delivered_spans * 1e6
            run.spans_per_cpu_s = run.delivered_spans / cpu if cpu else 0.0
            run.requests_per_cpu_s = run.spans_per_cpu_s / scenario.spans_per_request
        if run.errors:
            run.notes.append(f"{run.errors} errors at full speed: {res.get('status')}")
        if run.delivered_spans != run.acked_spans:
            run.notes.append(f"sink has {run.delivered_spans} of {run.acked_spans} acked spans")

        # Acknowledgement latency at a fixed 10k spans/s.
        base = sink.stats()["spans"]
        lat = loadgen(tools, url, rate=args.latency_rate, duration=args.latency_duration,
                      connections=args.latency_connections, **common)
        run.lat_rate = float(lat["spans_per_s"])
        run.lat_p50_us = float(lat["latency_us"]["p50"])
        run.lat_p99_us = float(lat["latency_us"]["p99"])
        run.lat_p999_us = float(lat["latency_us"]["p999"])
        run.lat_errors = int(lat["errors"])
        lat_acked = acked_spans(lat, scenario.spans_per_request)
        delivered, _ = wait_delivered(sink, base, lat_acked, args.drain_timeout)
        if delivered != lat_acked:
            run.notes.append(f"latency run: sink has {delivered} of {lat_acked} acked spans")
        if run.lat_rate < 0.95 * args.latency_rate:
            run.notes.append(f"latency run reached {run.lat_rate:.0f} of {args.latency_rate} spans/s")
        run.peak_rss_mib = peak_rss_kib(proc.pid) / 1024
        stats = sink.stats()
        run.bad_header = int(stats.get("bad_header", 0))
        run.decode_errors = int(stats.get("decode_errors", 0))
        if run.bad_header or run.decode_errors:
            run.notes.append(f"sink: {run.bad_header} without the experiment header, "
                             f"{run.decode_errors} undecodable")
    finally:
        if proc is not None:
            proc.stop()
        sink.stop()
    print(f"  round {rnd} {scenario.name:13s} {system:9s} {run.max_spans_per_s:10.0f} spans/s "
          f"cpu {run.cpu_busy:4.2f} {run.cpu_s_per_million:7.2f} CPU-s/M  rss {run.peak_rss_mib:6.1f} MiB "
          f"p50/p99/p999 {run.lat_p50_us:.0f}/{run.lat_p99_us:.0f}/{run.lat_p999_us:.0f} us"
          + (f"  [{'; '.join(run.notes)}]" if run.notes else ""), flush=True)
    return run


# ---------------------------------------------------------------------------------------------
# Against a real MLflow
# ---------------------------------------------------------------------------------------------

@dataclass
class MlflowRun:
    scenario: str
    path: str  # direct | proxy
    offered_spans_per_s: float = 0.0
    acked_spans: int = 0
    errors: int = 0
    stored_spans: int = 0
    stored_spans_per_s: float = 0.0
    lat_p50_us: float = 0.0
    lat_p99_us: float = 0.0
    distinct_spans: int | None = None
    notes: list[str] = field(default_factory=list)


def count_stored(db: Path, experiment_id: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute("SELECT COUNT(*) FROM spans WHERE experiment_id = ?",
                            (int(experiment_id),)).fetchone()[0]


def mlflow_compare(tools: Tools, args, workdir: Path) -> list[MlflowRun]:
    sys.path.insert(0, str(ROOT / "tests"))
    from support.mlflow_server import MlflowServer  # noqa: E402  (the venv's MLflow)

    runs: list[MlflowRun] = []
    server = MlflowServer(workdir / "mlflow")
    server.start()
    db = workdir / "mlflow" / "mlflow.db"
    try:
        for seed, (scenario, spr, conns, path) in enumerate(
                (("batched", 50, 2, "direct"), ("batched", 50, 2, "proxy"),
                 ("single", 1, 8, "direct"), ("single", 1, 8, "proxy")), start=101):
            exp = server.create_experiment(f"bench-{scenario}-{path}")
            run = MlflowRun(scenario, path)
            rundir = workdir / f"mlflow-{scenario}-{path}"
            rundir.mkdir()
            proxy = None
            try:
                if path == "direct":
                    url = server.url + "/v1/traces"
                    headers = {"x-mlflow-experiment-id": exp}
                    rate = 0.0  # as fast as MLflow answers: the agent waits for each export
                    duration = args.mlflow_duration
                    # Distinct ids for more than MLflow can take in that time: MLflow keys spans by
                    # id, so a repeated body would cost it a request and store nothing new.
                    distinct_requests = math.ceil(MLFLOW_DIRECT_DISTINCT_SPANS / spr)
                else:
                    port = free_port()
                    cmd = [str(tools.proxy), "--config", str(proxy_config(rundir / "proxy.yaml")),
                           "--listen", f"127.0.0.1:{port}", "--mlflow-url", server.url,
                           "--experiment-id", exp, "--grpc-listen", "off",
                           "--admin-listen", "off"]
                    proxy = Managed("proxy", cmd, rundir)
                    wait_port(port, proxy.proc, "proxy", proxy.log_path)
                    url = f"http://127.0.0.1:{port}/v1/traces"
                    headers = {}
                    # A fixed number of spans, offered far faster than MLflow takes them: the
                    # proxy acknowledges and queues them, so the time until MLflow holds them
                    # all is MLflow's own pace through the proxy. At least twice what MLflow
                    # stored directly, each with its own ids.
                    direct = next(r for r in runs if r.scenario == scenario and r.path == "direct")
                    total = max(2000, 2 * direct.stored_spans)
                    # +1: the paced schedule's last due time can round into the window.
                    distinct_requests = math.ceil(total / spr) + 1
                    rate = args.mlflow_proxy_rate
                    duration = total / rate
                res = loadgen(tools, url, rate=rate, duration=duration,
                              spans_per_request=spr, connections=conns, gzip=False, cpu=None,
                              headers=headers, timeout=duration + 300, seed=seed,
                              distinct_requests=distinct_requests)
                run.distinct_spans = res["distinct_spans"]
                run.acked_spans = acked_spans(res, spr)
                # MLflow can hold no more than the distinct spans sent: waiting for more would
                # only run out the drain timeout and understate its rate.
                expected = run.acked_spans
                if run.distinct_spans:
                    expected = min(expected, run.distinct_spans)
                run.errors = int(res["errors"])
                run.offered_spans_per_s = float(res["spans_per_s"])
                run.lat_p50_us = float(res["latency_us"]["p50"])
                run.lat_p99_us = float(res["latency_us"]["p99"])
                load_end = time.monotonic()
                deadline = time.monotonic() + args.mlflow_drain_timeout
                stored = count_stored(db, exp)
                while stored < expected and time.monotonic() < deadline:
                    time.sleep(0.25)
                    stored = count_stored(db, exp)
                run.stored_spans = stored
                # Over the loadgen's measured window (not its pool building) plus the time until
                # the poll that saw the last span stored (polls are 250 ms apart).
                run.stored_spans_per_s = stored / (float(res["seconds"]) + time.monotonic() - load_end)
                if stored < expected:
                    run.notes.append(f"MLflow stored {stored} of {expected} acked distinct spans "
                                     f"within {args.mlflow_drain_timeout:.0f}s")
                if run.errors:
                    run.notes.append(f"{run.errors} errors: {res.get('status')}")
                if run.distinct_spans and run.acked_spans > run.distinct_spans:
                    run.notes.append(f"{run.acked_spans} spans sent but only "
                                     f"{run.distinct_spans} distinct ids: repeats not counted")
            finally:
                if proxy is not None:
                    proxy.stop(timeout=args.mlflow_drain_timeout)
            runs.append(run)
            print(f"  mlflow {scenario:8s} {path:7s} stored {run.stored_spans} spans, "
                  f"{run.stored_spans_per_s:8.1f} spans/s; agent latency p50 {run.lat_p50_us/1000:.1f} ms "
                  f"p99 {run.lat_p99_us/1000:.1f} ms" + (f" [{'; '.join(run.notes)}]" if run.notes else ""),
                  flush=True)
    finally:
        server.stop()
    return runs


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

METRICS = [  # (field, label, format, better)
    ("max_spans_per_s", "max sustained spans/s", "{:,.0f}", "higher"),
    ("max_requests_per_s", "max sustained requests/s", "{:,.0f}", "higher"),
    ("spans_per_cpu_s", "spans per CPU-second", "{:,.0f}", "higher"),
    ("requests_per_cpu_s", "requests per CPU-second", "{:,.0f}", "higher"),
    ("cpu_s_per_million", "CPU-seconds per 1M spans", "{:.2f}", "lower"),
    ("peak_rss_mib", "peak RSS (MiB)", "{:.1f}", "lower"),
    ("lat_p50_us", "p50 ack latency @10k spans/s (µs)", "{:,.0f}", "lower"),
    ("lat_p99_us", "p99 ack latency @10k spans/s (µs)", "{:,.0f}", "lower"),
    ("lat_p999_us", "p999 ack latency @10k spans/s (µs)", "{:,.0f}", "lower"),
    ("cpu_busy", "share of its core used at full speed", "{:.2f}", "info"),
]


def median_of(runs: list[Run], scenario: str, system: str, metric: str) -> float | None:
    values = [getattr(r, metric) for r in runs if r.scenario == scenario and r.system == system]
    return statistics.median(values) if values else None


def write_csv(path: Path, runs: list[Run], mlflow_runs: list[MlflowRun]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        cols = [m[0] for m in METRICS] + ["acked_spans", "delivered_spans", "errors", "drain_s",
                                          "lat_rate", "lat_errors", "notes"]
        w.writerow(["bench", "round", "scenario", "system", *cols])
        for r in runs:
            w.writerow(["core", r.round, r.scenario, r.system,
                        *[(round(getattr(r, c), 3) if isinstance(getattr(r, c), float)
                           else ("; ".join(r.notes) if c == "notes" else getattr(r, c)))
                          for c in cols]])
        if mlflow_runs:
            w.writerow([])
            w.writerow(["bench", "scenario", "path", "offered_spans_per_s", "acked_spans", "errors",
                        "stored_spans", "stored_spans_per_s", "lat_p50_us", "lat_p99_us", "notes"])
            for m in mlflow_runs:
                w.writerow(["mlflow", m.scenario, m.path, round(m.offered_spans_per_s, 1),
                            m.acked_spans, m.errors, m.stored_spans, round(m.stored_spans_per_s, 1),
                            round(m.lat_p50_us), round(m.lat_p99_us), "; ".join(m.notes)])


def markdown(runs: list[Run], mlflow_runs: list[MlflowRun], meta: dict) -> str:
    systems = [s for s in ("proxy", "collector") if any(r.system == s for r in runs)]
    scenarios = [s for s in SCENARIOS if any(r.scenario == s for r in runs)]
    out = [f"# Proxy vs OpenTelemetry Collector{' vs direct export to MLflow' if mlflow_runs else ''}",
           "",
           f"Generated by `bench/compare.py` on {meta['date']} ({meta['host']}). "
           f"Median of {meta['rounds']} round(s), systems alternating; each system pinned to "
           f"CPU {meta['system_cpu']}, load generator and fake sink on CPU {meta['client_cpu']}. "
           f"Full-speed runs {meta['duration']} s, latency runs {meta['latency_duration']} s at "
           f"{meta['latency_rate']:,.0f} spans/s.",
           "",
           f"Proxy {meta['proxy_version']}; Collector {meta['collector_version']}. "
           f"Load average (1/5/15 min) {meta['load_before']} before, {meta['load_after']} after: "
           "other work shares these CPUs, so spans/s swings with it; CPU-seconds per span is the "
           "steadier figure. cpu busy below 1.0 means the system did not get the whole core.",
           ""]
    for sc in scenarios:
        s = SCENARIOS[sc]
        out += [f"## {sc}: {s.spans_per_request} span(s) per request"
                f"{', gzip' if s.gzip else ''}, {s.connections} connections at full speed", ""]
        header = "| metric | " + " | ".join(systems) + (" | proxy/Collector |" if len(systems) == 2 else " |")
        out += [header, "|" + "---|" * (len(systems) + 1 + (len(systems) == 2))]
        for metric, label, fmt, better in METRICS:
            vals = [median_of(runs, sc, sy, metric) for sy in systems]
            cells = [fmt.format(v) if v is not None else "n/a" for v in vals]
            row = f"| {label} | " + " | ".join(cells)
            if len(systems) == 2 and better == "info":
                row += " | "
            elif len(systems) == 2:
                ratio = vals[0] / vals[1] if vals[0] is not None and vals[1] else None
                row += f" | {ratio:.2f}x ({better} is better)" if ratio is not None else " | n/a"
            out.append(row + " |")
        notes = [f"round {r.round} {r.system}: {'; '.join(r.notes)}"
                 for r in runs if r.scenario == sc and r.notes]
        if notes:
            out += ["", "Notes: " + " — ".join(notes)]
        out.append("")
    out += targets(runs, mlflow_runs)
    if mlflow_runs:
        out += ["## Real MLflow (SQLite): agent straight to MLflow vs through the proxy", "",
                "| client | path | spans stored/s | agent p50 latency (ms) | agent p99 latency (ms) "
                "| acked | stored | errors |",
                "|---|---|---|---|---|---|---|---|"]
        for m in mlflow_runs:
            out.append(f"| {m.scenario} | {m.path} | {m.stored_spans_per_s:,.1f} | "
                       f"{m.lat_p50_us / 1000:,.2f} | {m.lat_p99_us / 1000:,.2f} | {m.acked_spans} | "
                       f"{m.stored_spans} | {m.errors} |")
        for sc in ("batched", "single"):
            d = next((m for m in mlflow_runs if m.scenario == sc and m.path == "direct"), None)
            p = next((m for m in mlflow_runs if m.scenario == sc and m.path == "proxy"), None)
            if d and p and d.stored_spans_per_s:
                out.append(f"\n{sc}: through the proxy MLflow stores "
                           f"{p.stored_spans_per_s / d.stored_spans_per_s:.2f}x the spans per second; "
                           f"the agent's p99 export latency is "
                           f"{d.lat_p99_us / max(p.lat_p99_us, 1):,.0f}x lower.")
        notes = [f"{m.scenario}/{m.path}: {'; '.join(m.notes)}" for m in mlflow_runs if m.notes]
        if notes:
            out += ["", "Notes: " + " — ".join(notes)]
        out.append("")
    return "\n".join(out)


def targets(runs: list[Run], mlflow_runs: list[MlflowRun]) -> list[str]:
    """Issue 8's targets against the medians: met or missed, and by how much."""
    rows = []

    def med(sc, sy, metric):
        return median_of(runs, sc, sy, metric)

    def add(target, value, goal, fmt, higher=True):
        if value is None:
            return
        ok = value >= goal if higher else value <= goal
        rows.append(f"| {target} | {fmt.format(value)} | {'met' if ok else 'missed'} |")

    for sc in ("batched", "batched-gzip", "single"):
        p, c = med(sc, "proxy", "spans_per_cpu_s"), med(sc, "collector", "spans_per_cpu_s")
        if p and c:
            add(f"spans per CPU-second, proxy/Collector, {sc} (>= 3x)", p / c, 3, "{:.2f}x")
        p, c = med(sc, "proxy", "peak_rss_mib"), med(sc, "collector", "peak_rss_mib")
        if p and c:
            add(f"peak RSS, proxy/Collector, {sc} (<= 0.33x)", p / c, 1 / 3, "{:.2f}x", higher=False)
    add("proxy spans per CPU-second, batched, no gzip (>= 300,000)",
        med("batched", "proxy", "spans_per_cpu_s"), 300_000, "{:,.0f}")
    add("proxy one-span requests per CPU-second (>= 40,000)",
        med("single", "proxy", "requests_per_cpu_s"), 40_000, "{:,.0f}")
    p99_us = med("batched", "proxy", "lat_p99_us")  # None when the batched scenario did not run
    add("proxy p99 ack latency at 10k spans/s, batched (< 1 ms)",
        p99_us / 1000 if p99_us else None, 1.0, "{:.2f} ms", higher=False)
    for sc, goal in (("batched", 1.0), ("single", 2.0)):
        d = next((m for m in mlflow_runs if m.scenario == sc and m.path == "direct"), None)
        p = next((m for m in mlflow_runs if m.scenario == sc and m.path == "proxy"), None)
        if d and p and d.stored_spans_per_s:
            add(f"MLflow spans stored/s through the proxy / direct, {sc} (>= {goal:g}x)",
                p.stored_spans_per_s / d.stored_spans_per_s, goal, "{:.2f}x")
    if not rows:
        return []
    return ["## Issue 8's targets", "", "| target | measured | |", "|---|---|---|", *rows, ""]


def plot(path: Path, runs: list[Run], mlflow_runs: list[MlflowRun]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = [s for s in ("proxy", "collector") if any(r.system == s for r in runs)]
    scenarios = [s for s in SCENARIOS if any(r.scenario == s for r in runs)]
    colors = {"proxy": "#1f77b4", "collector": "#ff7f0e", "direct": "#7f7f7f"}
    panels = (3 if runs else 0) + (1 if mlflow_runs else 0)
    rows, cols = (2, 2) if panels == 4 else (1, panels)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4.2 * rows), squeeze=False)
    axes = list(axes.flat)
    if not runs:
        axes = [None, None, None, *axes]
    width = 0.8 / max(len(systems), 1)
    xs = range(len(scenarios))

    def bars(ax, metric, title, scale=1.0, log=False):
        for i, sy in enumerate(systems):
            vals = [(median_of(runs, sc, sy, metric) or 0) * scale for sc in scenarios]
            pos = [x + (i - (len(systems) - 1) / 2) * width for x in xs]
            b = ax.bar(pos, vals, width, label=sy, color=colors[sy])
            ax.bar_label(b, fmt="{:,.0f}" if max(vals or [0]) >= 100 else "{:,.2f}", fontsize=7)
        ax.set_xticks(list(xs), scenarios)
        ax.set_title(title, fontsize=10)
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=8)

    if runs:
        bars(axes[0], "max_spans_per_s", "max sustained spans/s (1 core)\nhigher is better")
        bars(axes[1], "cpu_s_per_million", "CPU-seconds per 1M spans\nlower is better")
        ax = axes[2]
        for i, sy in enumerate(systems):
            for j, (metric, alpha) in enumerate((("lat_p50_us", 1.0), ("lat_p99_us", 0.6),
                                                ("lat_p999_us", 0.3))):
                vals = [(median_of(runs, sc, sy, metric) or 0) / 1000 for sc in scenarios]
                pos = [x + (i - (len(systems) - 1) / 2) * width for x in xs]
                ax.scatter(pos, vals, color=colors[sy], alpha=alpha, s=40,
                           label=f"{sy} {metric[4:-3]}", marker="o^s"[j])
        ax.axhline(1.0, color="red", lw=0.8, ls="--", label="1 ms target (p99)")
        ax.set_yscale("log")
        ax.set_xticks(list(xs), scenarios)
        ax.set_title("ack latency at 10k spans/s (ms, log)\nlower is better", fontsize=10)
        ax.legend(fontsize=6, ncol=2)
    if mlflow_runs:
        ax = axes[3]
        labels, vals, cols = [], [], []
        for m in mlflow_runs:
            labels.append(f"{m.scenario}\n{m.path}")
            vals.append(m.stored_spans_per_s)
            cols.append(colors["proxy" if m.path == "proxy" else "direct"])
        b = ax.bar(range(len(vals)), vals, color=cols)
        ax.bar_label(b, fmt="{:,.0f}", fontsize=7)
        ax.set_xticks(range(len(vals)), labels, fontsize=8)
        ax.set_title("real MLflow (SQLite): spans stored/s\nhigher is better", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def find_tool(given: str | None, build_dir: Path, rel: str) -> Path:
    path = Path(given) if given else build_dir / rel
    if not path.exists():
        raise SystemExit(f"compare: {path} does not exist (build it: cmake --build {build_dir})")
    return path.resolve()


def version_of(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default=str(ROOT / "build"),
                   help="where the proxy and bench tools are built (default build/)")
    p.add_argument("--proxy-bin"), p.add_argument("--loadgen-bin"), p.add_argument("--sink-bin")
    p.add_argument("--collector-bin", help="otelcol-bench (default: bench/build-collector.sh's)")
    p.add_argument("--systems", default="proxy,collector")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="seconds at full speed")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--latency-rate", type=float, default=10000.0)
    p.add_argument("--latency-duration", type=float, default=8.0)
    p.add_argument("--latency-connections", type=int, default=8)
    p.add_argument("--drain-timeout", type=float, default=60.0)
    p.add_argument("--system-cpu", default="1"), p.add_argument("--client-cpu", default="0")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument("--mlflow", action="store_true",
                   help="also compare direct export to a real MLflow with export through the proxy")
    p.add_argument("--mlflow-only", action="store_true", help="only the real-MLflow comparison")
    p.add_argument("--mlflow-duration", type=float, default=20.0)
    p.add_argument("--mlflow-drain-timeout", type=float, default=240.0)
    p.add_argument("--mlflow-proxy-rate", type=float, default=5000.0,
                   help="spans/s offered to the proxy in front of MLflow")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--name", default="compare", help="output file stem (default compare)")
    p.add_argument("--smoke", action="store_true",
                   help="CI: fail unless every run delivered all acked spans with no errors")
    args = p.parse_args()
    if args.no_pin:
        args.system_cpu = args.client_cpu = None

    build = Path(args.build_dir)
    systems = [s for s in args.systems.split(",") if s]
    tools = Tools(proxy=find_tool(args.proxy_bin, build, "src/otlp-mlflow-proxy"),
                  loadgen=find_tool(args.loadgen_bin, build, "bench/bench-loadgen"),
                  sink=find_tool(args.sink_bin, build, "bench/bench-fake-sink"),
                  collector=None)
    if "collector" in systems and not args.mlflow_only:
        if args.collector_bin:
            tools.collector = Path(args.collector_bin)
        else:
            built = subprocess.run([str(ROOT / "bench" / "build-collector.sh"), "--print-path"],
                                   capture_output=True, text=True)
            if built.returncode != 0:
                raise SystemExit("compare: the Collector is not built: run bench/build-collector.sh "
                                 "(or --systems proxy)")
            tools.collector = Path(built.stdout.strip().splitlines()[-1])
    scenarios = [SCENARIOS[s] for s in args.scenarios.split(",") if s]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "host": f"{os.cpu_count()} CPUs, {_cpu_model()}, Linux {os.uname().release}",
        "rounds": args.rounds, "duration": args.duration,
        "latency_duration": args.latency_duration, "latency_rate": args.latency_rate,
        "system_cpu": args.system_cpu or "any", "client_cpu": args.client_cpu or "any",
        "proxy_version": f"commit {commit}",
        "load_before": "%.1f %.1f %.1f" % os.getloadavg(),
        "collector_version": version_of([str(tools.collector), "--version"]) if tools.collector
        else "not run",
    }

    runs: list[Run] = []
    mlflow_runs: list[MlflowRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        workdir = Path(tmp)
        try:
            if not args.mlflow_only:
                for rnd in range(1, args.rounds + 1):
                    order = systems if rnd % 2 else list(reversed(systems))
                    for sc in scenarios:
                        for sy in order:
                            runs.append(measure(sy, sc, rnd, tools, args, workdir))
            if args.mlflow or args.mlflow_only:
                mlflow_runs = mlflow_compare(tools, args, workdir)
        except Exception:
            keep = Path(tempfile.mkdtemp(prefix="bench-compare-failed-"))
            shutil.copytree(workdir, keep, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.db", "artifacts"))
            print(f"compare: failed; logs kept in {keep}", file=sys.stderr)
            raise

    meta["load_after"] = "%.1f %.1f %.1f" % os.getloadavg()
    stem = out / args.name
    write_csv(stem.with_suffix(".csv"), runs, mlflow_runs)
    stem.with_suffix(".md").write_text(markdown(runs, mlflow_runs, meta))
    plot(stem.with_suffix(".png"), runs, mlflow_runs)
    print(f"compare: wrote {stem}.md, .csv and .png")
    print(stem.with_suffix(".md").read_text())

    if args.smoke:
        bad = [r for r in runs if r.errors or r.lat_errors or r.delivered_spans != r.acked_spans
               or r.acked_spans == 0 or r.bad_header or r.decode_errors]
        for r in bad:
            print(f"compare smoke FAILED: {r.scenario}/{r.system}: acked {r.acked_spans}, "
                  f"delivered {r.delivered_spans}, errors {r.errors}+{r.lat_errors}, "
                  f"sink bad header {r.bad_header}, decode errors {r.decode_errors}",
                  file=sys.stderr)
        if bad:
            return 1
        print(f"compare smoke: {len(runs)} runs, every acked span delivered to the sink")
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
