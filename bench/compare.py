"""Side-by-side benchmark: the proxy against the OpenTelemetry Collector doing the same job, and
agents exporting straight to MLflow against exporting through the proxy (issues 8 and 21).

    bench/compare.sh                       # builds what it needs, then runs this with the venv
    ~/.cache/otlp-mlflow-proxy/venv/bin/python bench/compare.py [--rounds 3] [--mlflow]

Systems: the proxy (default policy) and the Collector in two pipelines doing its masking job:
otelcol-attributes (the attributes processor updating the proxy's exact content keys: the
cheapest equivalent, the primary peer) and otelcol-redaction (the redaction processor matching
them as regexes). `--systems collector` means both pipelines.

Core comparison (default): each system gets CPU 1 (`taskset -c 1`); the load generator and the
fake MLflow sink share CPU 0. For every round, scenario and system (the order of the systems
alternates between rounds) a fresh sink and a fresh system are started and measured:

  spans per CPU-s closed loop at full speed (--rate 0) for --duration seconds; the run ends when
                  the sink has counted every span the system acknowledged (a queue of accepted
                  spans is exported after the load stops, and that CPU is charged too). Spans
                  delivered / utime+stime of the system (/proc/<pid>/stat) over load and drain.
  max spans/s     the same spans / (load time + drain time).
  peak RSS        VmHWM (/proc/<pid>/status) at the end of the run (both load phases).
  latency         p50/p99/p999 of the acknowledgement at a fixed 10k spans/s (open loop).

Scenarios (compare_report.SCENARIOS): 512 spans per request (the OTel SDKs' BatchSpanProcessor
default) and 50, short content and ~1.5 KB spans, plain and gzip (both hops are compressed
alike, for every system), and one span per request (Koog before 1.0). The median over the
rounds is reported.

--mlflow: a real MLflow server (SQLite), the load generator straight to it and through the proxy
(not pinned: MLflow is the bottleneck here), batched and one span per request. Reports the
agent-visible latency and the spans MLflow stored per second (counted in its database).

Writes compare.md, compare.csv and compare.png to --out (bench/results by default)."""
from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from compare_report import (PEERS, SCENARIOS, SYSTEM_LABELS, MlflowRun, Run, Scenario, markdown,
                            plot, write_csv)

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT_ID = "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The proxy's queue holds 256 MiB of encoded spans (queue.max_bytes default); the Collector's
# sending queue is given the same bound, measured the same way (sizer: bytes, the size of the
# processed spans encoded as protobuf). Both keep the queue in memory.
QUEUE_BYTES = 256 * 1024 * 1024
# The proxy's exporter: 2 requests in flight, batches closed at 8192 spans or 10 ms (defaults);
# the Collector gets the same through its batcher and 2 consumers.
EXPORT_CONCURRENCY = 2
BATCH_SPANS = 8192
BATCH_LINGER_MS = 10
# Distinct spans the load generator holds for an agent exporting straight to MLflow (SQLite
# stores well under 3,000 spans/s, so a 20 s run never reaches them; about 100 MB of bodies).
MLFLOW_DIRECT_DISTINCT_SPANS = 60_000

# The proxy's built-in content keys on span attributes (src/policy/content_keys.cpp).
SPAN_CONTENT_KEYS = [
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.tool.definitions", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
    "gen_ai.prompt*", "gen_ai.completion*", "system_instructions", "koog.node.input",
    "koog.node.output", "koog.subgraph.input", "koog.subgraph.output", "koog.moderation.result",
    "koog.planner.*", "input.value", "output.value", "llm.input_messages*",
    "llm.output_messages*", "llm.prompts*", "tool.parameters", "traceloop.entity.input",
    "traceloop.entity.output", "mlflow.spanInputs", "mlflow.spanOutputs",
]
# The content events and the fields the proxy masks inside them.
CONTENT_EVENTS = {"gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message",
                  "gen_ai.tool.message", "gen_ai.choice", "gen_ai.moderation.result",
                  "gen_ai.content.prompt"}
EVENT_CONTENT_FIELDS = ["content", "message", "message.*", "arguments", "tool_calls",
                        "tool_calls.*", "gen_ai.prompt", "gen_ai.completion", "gen_ai.event.content"]
# The attributes processor's `update` takes exact keys only (`pattern` is for delete and hash).
# For each glob, the keys under it that bench-loadgen's traffic carries (agent_traffic.hpp), each
# updated as an exact key: the Collector masks what the proxy masks on this traffic, at the
# cheapest cost; a deployment would have to list every index its agents may send.
GLOB_KEYS_IN_TRAFFIC = {
    "gen_ai.prompt*": ["gen_ai.prompt.0.role", "gen_ai.prompt.0.content"],
    "gen_ai.completion*": ["gen_ai.completion.0.role", "gen_ai.completion.0.content"],
    "koog.planner.*": [],
    "llm.input_messages*": ["llm.input_messages.0.message.role",
                            "llm.input_messages.0.message.content",
                            "llm.input_messages.1.message.role",
                            "llm.input_messages.1.message.content"],
    "llm.output_messages*": ["llm.output_messages.0.message.role",
                             "llm.output_messages.0.message.content"],
    "llm.prompts*": [],
}


def attribute_update_keys() -> list[str]:
    keys = []
    for key in SPAN_CONTENT_KEYS:
        keys += GLOB_KEYS_IN_TRAFFIC[key] if "*" in key else [key]
    return keys


# Keys whose values the proxy keeps in structure-kept content (roles, part types, tool names):
# structure, not content, in JSON and as the last segment of a flattened key.
STRUCTURAL_KEYS = {"role", "type", "name", "id", "tool_call_id", "finish_reason", "model", "tool"}


def is_masked_text(text: str) -> bool:
    """A content string with nothing of the agent's left: a whole-value marker (the Collector's
    `****`, the proxy's `[masked: N bytes]`), or JSON whose every leaf is masked (the proxy's
    default keeps the structure: keys and structural values stay, strings are markers, numbers
    0, booleans false), a JSON string inside JSON walked once more."""
    if text == "****" or text.startswith("[masked: "):
        return True
    if text.lstrip()[:1] not in ("[", "{"):
        return False
    try:
        return leaves_masked(json.loads(text))
    except ValueError:
        return False


def leaves_masked(node, key: str | None = None) -> bool:
    if isinstance(node, dict):
        return all(leaves_masked(value, member) for member, value in node.items())
    if isinstance(node, list):
        return all(leaves_masked(value, key) for value in node)
    if node is None or key in STRUCTURAL_KEYS:
        return True
    if isinstance(node, str):
        return is_masked_text(node)
    if isinstance(node, bool):
        return node is False
    return node == 0


def content_in_clear(export: Path) -> tuple[int, int]:
    """(content values left in clear, content values) in an export the sink kept: string values
    of span attributes under the proxy's content keys and of content-event fields, bar the
    structural fields of flattened messages (`llm.input_messages.0.message.role`). A value is
    masked when is_masked_text says so."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    def content(key: str, globs: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(key, g) for g in globs) and key.rsplit(".", 1)[-1] not in STRUCTURAL_KEYS

    request = ExportTraceServiceRequest.FromString(export.read_bytes()) if export.exists() else None
    values = []
    for span in (s for rs in (request.resource_spans if request else ()) for ss in rs.scope_spans
                 for s in ss.spans):
        values += [kv.value for kv in span.attributes if content(kv.key, SPAN_CONTENT_KEYS)]
        values += [kv.value for e in span.events if e.name in CONTENT_EVENTS
                   for kv in e.attributes if content(kv.key, EVENT_CONTENT_FIELDS)]
    strings = [v.string_value for v in values if v.WhichOneof("value") == "string_value"]
    clear = [v for v in strings if not is_masked_text(v)]
    return len(clear), len(strings)


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
    """bench-fake-sink: decodes every request, counts spans, checks the experiment header, and
    keeps the first export it accepts (`first_export`)."""

    def __init__(self, binary: Path, workdir: Path, cpu: str | None):
        port_file = workdir / "sink.port"
        port_file.unlink(missing_ok=True)
        self.first_export = workdir / "first-export.pb"
        super().__init__("sink", pinned(cpu, [str(binary), "--listen", "127.0.0.1:0",
                                              "--port-file", str(port_file),
                                              "--require-header", "x-mlflow-experiment-id",
                                              "--threads", "1",
                                              "--keep-first", str(self.first_export)]), workdir)
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


@dataclass(frozen=True)
class CollectorTuning:
    """The Collector's settings for the job, from the command line; the defaults are the best
    configuration found (docs/benchmarks.md says why each)."""
    batching: str = "exporter"   # exporter: sending_queue.batch; processor: the batch processor
    gogc: str | None = None      # GOGC for the Go runtime; None: its default (100)
    gomemlimit: str | None = None  # GOMEMLIMIT; None: none

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name, value in (("GOGC", self.gogc), ("GOMEMLIMIT", self.gomemlimit)):
            env.pop(name, None)
            if value:
                env[name] = value
        return env


def masking_processor(pipeline: str) -> tuple[str, str]:
    """The processor that masks the content keys in `pipeline`, as (name, YAML block)."""
    if pipeline == "otelcol-attributes":
        actions = "\n".join(f"      - {{key: '{k}', action: update, value: '****'}}"
                            for k in attribute_update_keys())
        return "attributes/content", f"""  # The proxy's exact content keys (and, for its globs, the keys under them that this
  # traffic carries) updated to a fixed masked value where present: span attributes only.
  attributes/content:
    actions:
{actions}"""
    patterns = "\n".join(f"      - '{_glob_to_regex(g)}'"
                         for g in SPAN_CONTENT_KEYS + EVENT_CONTENT_FIELDS)
    return "redaction", f"""  # The values of keys matching the content keys (and the content events' fields, in every
  # event: the processor has no event-name condition) masked, every other attribute kept.
  redaction:
    allow_all_keys: true
    blocked_key_patterns:
{patterns}
    summary: silent"""


def batching_yaml(tuning: CollectorTuning) -> tuple[str, str]:
    """(the exporter's sending_queue block, the batch processor's block or "")."""
    queue = f"""    sending_queue:
      enabled: true
      sizer: bytes
      queue_size: {QUEUE_BYTES}
      # A full queue makes the receiver wait instead of refusing a request it has decoded and
      # processed already: no CPU spent on data thrown away, and nothing dropped.
      block_on_overflow: true
      num_consumers: {EXPORT_CONCURRENCY}"""
    if tuning.batching == "processor":
        return queue, f"""  batch:
    send_batch_size: {BATCH_SPANS}
    send_batch_max_size: {BATCH_SPANS}
    timeout: {BATCH_LINGER_MS}ms"""
    return queue + f"""
      batch:
        sizer: items
        min_size: {BATCH_SPANS}
        max_size: {BATCH_SPANS}
        flush_timeout: {BATCH_LINGER_MS}ms""", ""


def collector_config(path: Path, port: int, sink_url: str, scenario: Scenario, pipeline: str,
                     tuning: CollectorTuning) -> Path:
    masking_name, masking = masking_processor(pipeline)
    queue, batch = batching_yaml(tuning)
    processors = [masking_name] + (["batch"] if batch else [])
    path.write_text(f"""# bench/compare.py: the OpenTelemetry Collector doing the proxy's job ({pipeline})
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
processors:
{masking}
{batch}
exporters:
  otlphttp:
    traces_endpoint: {sink_url}/v1/traces
    headers:
      x-mlflow-experiment-id: "{EXPERIMENT_ID}"
    compression: {"gzip" if scenario.gzip else "none"}   # as the proxy's exporter.compression
    encoding: proto
{queue}
service:
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [{", ".join(processors)}]
      exporters: [otlphttp]
""")
    return path


def collector_summary(tuning: CollectorTuning) -> list[str]:
    """What the report says about the Collector's pipelines and settings."""
    globs = [g for g in SPAN_CONTENT_KEYS if "*" in g]
    listed = "; ".join(f"`{g}`: " + (", ".join(f"`{k}`" for k in GLOB_KEYS_IN_TRAFFIC[g]) or "none")
                       for g in globs)
    batching = (f"exporter batching (`sending_queue.batch`: {BATCH_SPANS} spans, "
                f"{BATCH_LINGER_MS} ms)" if tuning.batching == "exporter" else
                f"the batch processor ({BATCH_SPANS} spans, {BATCH_LINGER_MS} ms)")
    memory = ", ".join(f"{n}={v}" for n, v in (("GOGC", tuning.gogc), ("GOMEMLIMIT", tuning.gomemlimit))
                       if v) or "GOGC and GOMEMLIMIT unset (the Go runtime's defaults)"
    return [
        "**The Collector's pipelines.** *attributes*: the attributes processor, `action: update` "
        "with the value `****` on each of the proxy's exact content keys. Its `update` takes "
        "exact keys only, so the proxy's glob content keys cannot be expressed; for each, the "
        f"configuration lists the keys under it that this traffic carries: {listed}. It acts on "
        "span attributes only: the content events' fields (`content` in `gen_ai.*.message` "
        "events), which the proxy masks, are left as they are. *redaction*: the redaction "
        "processor, `allow_all_keys`, the content keys and content-event fields as anchored "
        "regexes in `blocked_key_patterns` (in every event). Neither redacts span status or "
        "exception messages, nor normalizes, as the proxy does by default.",
        f"**The Collector's settings.** OTLP/HTTP receiver; {batching}; `sending_queue` in "
        f"memory, bound to 256 MiB of encoded spans (sizer `bytes`, as the proxy's queue), "
        f"`block_on_overflow`, "
        f"{EXPORT_CONCURRENCY} consumers; `otlphttp` exporter, proto, gzip as the scenario; "
        f"own metrics off, logs at warn; {memory}; GOMAXPROCS from the CPU affinity (1).",
    ]


def start_system(system: str, tools: "Tools", workdir: Path, sink: Sink,
                 cpu: str | None, scenario: Scenario, tuning: CollectorTuning) -> tuple[Managed, str]:
    port = free_port()
    if system == "proxy":
        # Both hops compressed alike: a gzip scenario gzips to the sink too, the others send plain.
        compression = "gzip" if scenario.gzip else "none"
        cmd = [str(tools.proxy), "--config",
               str(proxy_config(workdir / "proxy.yaml", compression)),
               "--listen", f"127.0.0.1:{port}", "--mlflow-url", sink.url,
               "--experiment-id", EXPERIMENT_ID, "--grpc-listen", "off", "--admin-listen", "off"]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OTLP_MLFLOW_PROXY_", "MLFLOW_"))}
    else:
        config = collector_config(workdir / "collector.yaml", port, sink.url, scenario, system, tuning)
        cmd = [str(tools.collector), "--config", str(config)]
        env = tuning.env()
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
            connections: int, gzip: bool, cpu: str | None, content: str = "long",
            warmup: float = 0, headers: dict[str, str] | None = None,
            timeout: float | None = None, seed: int | None = None,
            distinct_requests: int | None = None) -> dict:
    cmd = [str(tools.loadgen), "--url", url, "--rate", str(rate), "--duration", str(duration),
           "--warmup", str(warmup), "--spans-per-request", str(spans_per_request),
           "--connections", str(connections), "--threads", "1", "--mix", "both",
           "--content", content]
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
    protobuf = re.search(r"(\d+) bytes of protobuf", out.stderr)
    result["span_bytes"] = int(protobuf[1]) / spans_per_request if protobuf else 0.0
    return result


def acked_spans(result: dict, spans_per_request: int) -> int:
    """Spans in requests answered 2xx: the loadgen's `spans` counts every request sent, `ok` the
    answered 2xx, and every request carries the same number of spans."""
    return int(result["ok"]) * spans_per_request


def wait_delivered(sink: Sink, base: int, expected: int, timeout: float,
                   stall: float) -> tuple[int, float]:
    """Polls the sink until it counted `expected` spans beyond `base`; (delivered, seconds).
    Gives up after `timeout` seconds, or after `stall` seconds without a new span: a system that
    acknowledged spans and dropped them would otherwise hold the run until the timeout."""
    start = last_progress = time.monotonic()
    delivered = 0
    while True:
        now = time.monotonic()
        count = sink.stats()["spans"] - base
        if count != delivered:
            delivered, last_progress = count, now
        if delivered >= expected or now - start >= timeout or now - last_progress >= stall:
            return delivered, now - start
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------------
# One measured run of one system
# ---------------------------------------------------------------------------------------------

def measure(system: str, scenario: Scenario, rnd: int, tools: Tools, args, workdir: Path) -> Run:
    run = Run(rnd, scenario.name, system)
    rundir = workdir / f"r{rnd}-{scenario.name}-{system}"
    rundir.mkdir(parents=True)
    sink = Sink(tools.sink, rundir, args.client_cpu)
    proc = None
    try:
        proc, url = start_system(system, tools, rundir, sink, args.system_cpu, scenario, args.tuning)
        common = dict(spans_per_request=scenario.spans_per_request, gzip=scenario.gzip,
                      content=scenario.content, cpu=args.client_cpu)
        # Warm-up: connections, allocator arenas, Go's heap and JIT-free code paths all settled,
        # and everything it acknowledged delivered before the measured run starts.
        warm = loadgen(tools, url, rate=0, duration=args.warmup, connections=scenario.connections,
                       **common)
        wait_delivered(sink, 0, acked_spans(warm, scenario.spans_per_request), args.drain_timeout,
                       args.stall_timeout)
        full_speed(run, proc, sink, url, scenario, tools, args, common)
        latency(run, sink, url, tools, args, common)
        run.peak_rss_mib = peak_rss_kib(proc.pid) / 1024
        run.content_in_clear, run.content_values = content_in_clear(sink.first_export)
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
    print(f"  round {rnd} {scenario.name:16s} {system:18s} {run.spans_per_cpu_s:10,.0f} spans/CPU-s "
          f"{run.max_spans_per_s:10,.0f} spans/s cpu {run.cpu_busy:4.2f} drain {run.drain_s:5.1f}s "
          f"rss {run.peak_rss_mib:6.1f} MiB p50/p99/p999 {run.lat_p50_us:.0f}/{run.lat_p99_us:.0f}/"
          f"{run.lat_p999_us:.0f} us" + (f"  [{'; '.join(run.notes)}]" if run.notes else ""),
          flush=True)
    return run


def full_speed(run: Run, proc: Managed, sink: Sink, url: str, scenario: Scenario, tools: Tools,
               args, common: dict) -> None:
    """Closed loop at full speed, then until the sink has every acknowledged span: the system is
    charged its CPU over both, so spans it accepted faster than it could deliver cost what their
    delivery costs, whenever that happens."""
    base = sink.stats()["spans"]
    cpu0, sink_cpu0 = cpu_seconds(proc.pid), cpu_seconds(sink.pid)
    res = loadgen(tools, url, rate=0, duration=args.duration, connections=scenario.connections,
                  **common)
    cpu_load = cpu_seconds(proc.pid) - cpu0
    # The loadgen's measured window, not its process's lifetime: it builds (and gzips) its
    # request pool first, seconds on a busy core, while the system under test idles.
    run.load_s = float(res["seconds"])
    run.span_bytes = float(res["span_bytes"])
    run.acked_spans = acked_spans(res, scenario.spans_per_request)
    run.errors = int(res["errors"])
    run.delivered_spans, run.drain_s = wait_delivered(sink, base, run.acked_spans,
                                                      args.drain_timeout, args.stall_timeout)
    run.cpu_s = cpu_seconds(proc.pid) - cpu0
    run.drain_cpu_s = run.cpu_s - cpu_load
    sink_cpu = cpu_seconds(sink.pid) - sink_cpu0
    # Spans beyond the acknowledged ones (an export retried after the sink counted it) earn
    # nothing; spans acknowledged and never delivered count for nothing.
    counted = min(run.delivered_spans, run.acked_spans)
    window = run.load_s + run.drain_s
    run.max_spans_per_s = counted / window
    run.max_requests_per_s = run.max_spans_per_s / scenario.spans_per_request
    run.cpu_busy = run.cpu_s / window
    # Near 1.0 the client side (on its own core) limited spans/s; spans per CPU-second stands.
    run.client_busy = (sink_cpu + float(res.get("client_cpu_s", 0))) / window
    if counted and run.cpu_s:
        run.cpu_s_per_million = run.cpu_s / counted * 1e6
        run.spans_per_cpu_s = counted / run.cpu_s
        run.requests_per_cpu_s = run.spans_per_cpu_s / scenario.spans_per_request
    if run.errors:
        run.notes.append(f"{run.errors} errors at full speed: {res.get('status')}")
    if run.delivered_spans != run.acked_spans:
        run.notes.append(f"sink has {run.delivered_spans} of {run.acked_spans} acked spans after "
                         f"{run.drain_s:.0f}s of drain")


def latency(run: Run, sink: Sink, url: str, tools: Tools, args, common: dict) -> None:
    """Acknowledgement latency at a fixed rate (10k spans/s by default), open loop."""
    base = sink.stats()["spans"]
    lat = loadgen(tools, url, rate=args.latency_rate, duration=args.latency_duration,
                  connections=args.latency_connections, **common)
    run.lat_rate = float(lat["spans_per_s"])
    run.lat_p50_us = float(lat["latency_us"]["p50"])
    run.lat_p99_us = float(lat["latency_us"]["p99"])
    run.lat_p999_us = float(lat["latency_us"]["p999"])
    run.lat_errors = int(lat["errors"])
    lat_acked = acked_spans(lat, common["spans_per_request"])
    delivered, _ = wait_delivered(sink, base, lat_acked, args.drain_timeout, args.stall_timeout)
    if delivered != lat_acked:
        run.notes.append(f"latency run: sink has {delivered} of {lat_acked} acked spans")
    if run.lat_rate < 0.95 * args.latency_rate:
        run.notes.append(f"latency run reached {run.lat_rate:.0f} of {args.latency_rate:.0f} spans/s")


# ---------------------------------------------------------------------------------------------
# Against a real MLflow
# ---------------------------------------------------------------------------------------------

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


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default=str(ROOT / "build"),
                   help="where the proxy and bench tools are built (default build/)")
    p.add_argument("--proxy-bin"), p.add_argument("--loadgen-bin"), p.add_argument("--sink-bin")
    p.add_argument("--collector-bin", help="otelcol-bench (default: bench/build-collector.sh's)")
    p.add_argument("--systems", default="proxy,collector",
                   help=f"of {', '.join(SYSTEM_LABELS)}; collector: both Collector pipelines")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=", ".join(SCENARIOS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="seconds at full speed")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--latency-rate", type=float, default=10000.0)
    p.add_argument("--latency-duration", type=float, default=8.0)
    p.add_argument("--latency-connections", type=int, default=8)
    p.add_argument("--drain-timeout", type=float, default=900.0,
                   help="most seconds to wait for the sink to count every acknowledged span")
    p.add_argument("--stall-timeout", type=float, default=30.0,
                   help="stop waiting when the sink counted nothing new for this long")
    p.add_argument("--collector-batching", choices=("exporter", "processor"), default="exporter")
    p.add_argument("--collector-gogc", help="GOGC for the Collector (default: unset, 100)")
    p.add_argument("--collector-gomemlimit", help="GOMEMLIMIT for the Collector (default: unset)")
    p.add_argument("--system-cpu", default="1"), p.add_argument("--client-cpu", default="0")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument("--host-note", default="not stated (--host-note): treat absolute figures as "
                   "noisy; the ratios within one run are the result",
                   help="how busy the host was, for the report")
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
    args.tuning = CollectorTuning(args.collector_batching, args.collector_gogc,
                                  args.collector_gomemlimit)
    systems = []
    for name in (s for s in args.systems.split(",") if s):
        for system in (PEERS if name == "collector" else (name,)):
            if system not in SYSTEM_LABELS:
                p.error(f"--systems: unknown system {system!r}")
            if system not in systems:
                systems.append(system)
    args.system_list = systems
    unknown = [s for s in args.scenarios.split(",") if s and s not in SCENARIOS]
    if unknown:
        p.error(f"--scenarios: unknown {', '.join(unknown)}")
    args.scenario_list = [SCENARIOS[s] for s in args.scenarios.split(",") if s]
    return args


def resolve_tools(args) -> Tools:
    build = Path(args.build_dir)
    tools = Tools(proxy=find_tool(args.proxy_bin, build, "src/otlp-mlflow-proxy"),
                  loadgen=find_tool(args.loadgen_bin, build, "bench/bench-loadgen"),
                  sink=find_tool(args.sink_bin, build, "bench/bench-fake-sink"),
                  collector=None)
    if any(s in PEERS for s in args.system_list) and not args.mlflow_only:
        if args.collector_bin:
            tools.collector = Path(args.collector_bin)
        else:
            built = subprocess.run([str(ROOT / "bench" / "build-collector.sh"), "--print-path"],
                                   capture_output=True, text=True)
            if built.returncode != 0:
                raise SystemExit("compare: the Collector is not built: run bench/build-collector.sh "
                                 "(or --systems proxy)")
            tools.collector = Path(built.stdout.strip().splitlines()[-1])
    return tools


def run_all(args, tools: Tools) -> tuple[list[Run], list[MlflowRun]]:
    runs: list[Run] = []
    mlflow_runs: list[MlflowRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        workdir = Path(tmp)
        try:
            if not args.mlflow_only:
                for rnd in range(1, args.rounds + 1):
                    systems = args.system_list
                    order = systems if rnd % 2 else list(reversed(systems))
                    for sc in args.scenario_list:
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
    return runs, mlflow_runs


def smoke_failures(runs: list[Run]) -> list[Run]:
    bad = [r for r in runs if r.errors or r.lat_errors or r.delivered_spans != r.acked_spans
           or r.acked_spans == 0 or r.bad_header or r.decode_errors]
    for r in bad:
        print(f"compare smoke FAILED: {r.scenario}/{r.system}: acked {r.acked_spans}, "
              f"delivered {r.delivered_spans}, errors {r.errors}+{r.lat_errors}, "
              f"sink bad header {r.bad_header}, decode errors {r.decode_errors}",
              file=sys.stderr)
    return bad


def main() -> int:
    args = parse_args()
    tools = resolve_tools(args)
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
        "proxy_version": f"commit {commit}", "host_note": args.host_note,
        "load_before": "%.1f %.1f %.1f" % os.getloadavg(),
        "collector_version": version_of([str(tools.collector), "--version"]) if tools.collector
        else "not run",
        "collector_summary": collector_summary(args.tuning),
    }
    runs, mlflow_runs = run_all(args, tools)
    meta["load_after"] = "%.1f %.1f %.1f" % os.getloadavg()
    stem = out / args.name
    write_csv(stem.with_suffix(".csv"), runs, mlflow_runs)
    stem.with_suffix(".md").write_text(markdown(runs, mlflow_runs, meta))
    plot(stem.with_suffix(".png"), runs, mlflow_runs)
    print(f"compare: wrote {stem}.md, .csv and .png")
    print(stem.with_suffix(".md").read_text())
    if args.smoke:
        if smoke_failures(runs):
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
