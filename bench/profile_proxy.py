#!/usr/bin/env python3
"""The proxy's cost per span, for optimisation work: bench-loadgen -> proxy -> bench-fake-sink,
the proxy alone on one core (taskset), its CPU time from /proc/<pid>/stat (utime + stime) over
the whole run, delivery to the sink included. Optionally under `perf record` (cpu-clock, call
graphs) for a profile. bench/compare.py is the full benchmark; this is the quick loop.

  bench/profile_proxy.py --build build [--spans-per-request 50] [--rate 0] [--duration 10]
                         [--proxy-core 1] [--client-core 0] [--perf OUT.data] [--config FILE]
                         [--gzip] [--connections 4]

Prints one JSON line: loadgen's result plus proxy_cpu_s, spans_per_cpu_s, requests_per_cpu_s,
sink_spans and proxy_rss_kb (peak)."""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")

# The default configuration (default policy: content masked; memory durability; info log) but
# no gRPC or admin listener, whose fixed ports would collide with other proxies on the machine.
CONFIG = """receiver:
  grpc:
    listen: "off"
admin:
  listen: "off"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    sys.exit(f"profile_proxy: timed out waiting for {what}")


def sink_stats(url: str) -> dict:
    with urllib.request.urlopen(url + "/stats", timeout=5) as r:
        return json.loads(r.read())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build", type=Path)
    p.add_argument("--proxy", type=Path, help="proxy binary (default BUILD/src/otlp-mlflow-proxy)")
    p.add_argument("--config", type=Path, help="proxy config (default: built-in defaults, no gRPC)")
    p.add_argument("--spans-per-request", type=int, default=50)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--gzip", action="store_true")
    p.add_argument("--proxy-core", default="1")
    p.add_argument("--client-core", default="0")
    p.add_argument("--perf", type=Path, help="record a cpu-clock profile of the proxy into this file")
    args = p.parse_args()

    bench = args.build / "bench"
    proxy_bin = args.proxy or args.build / "src" / "otlp-mlflow-proxy"
    with tempfile.TemporaryDirectory(prefix="profile-proxy-") as tmp:
        tmp = Path(tmp)
        port_file = tmp / "sink.port"
        sink = subprocess.Popen(["taskset", "-c", args.client_core, str(bench / "bench-fake-sink"),
                                 "--listen", "127.0.0.1:0", "--port-file", str(port_file),
                                 "--require-header", "x-mlflow-experiment-id"],
                                stderr=subprocess.DEVNULL)
        wait_for(port_file.exists, 10, "the sink")
        sink_url = f"http://127.0.0.1:{port_file.read_text().strip()}"
        config = args.config
        if config is None:
            config = tmp / "proxy.yaml"
            config.write_text(CONFIG)
        port = free_port()
        proxy = subprocess.Popen(["taskset", "-c", args.proxy_core, str(proxy_bin), "--config", str(config),
                                  "--listen", f"127.0.0.1:{port}", "--mlflow-url", sink_url,
                                  "--experiment-id", "1"],
                                 stdout=open(tmp / "proxy.log", "w"), stderr=subprocess.STDOUT)
        perf = None
        try:
            def accepts():
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    return True
                except OSError:
                    return False
            wait_for(accepts, 120, "the proxy")
            if args.perf:
                perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "499", "--call-graph", "dwarf,16384",
                                         "-p", str(proxy.pid), "-o", str(args.perf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.5)
            before = cpu_seconds(proxy.pid)
            cmd = ["taskset", "-c", args.client_core, str(bench / "bench-loadgen"),
                   "--url", f"http://127.0.0.1:{port}/v1/traces", "--warmup", "0",
                   "--duration", str(args.duration), "--rate", str(args.rate),
                   "--spans-per-request", str(args.spans_per_request),
                   "--connections", str(args.connections)]
            if args.gzip:
                cmd.append("--gzip")
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            wait_for(lambda: sink_stats(sink_url)["spans"] >= result["spans"], 60, "delivery to the sink")
            after = cpu_seconds(proxy.pid)
            result["sink_spans"] = sink_stats(sink_url)["spans"]
            result["proxy_cpu_s"] = round(after - before, 3)
            result["spans_per_cpu_s"] = round(result["sink_spans"] / max(after - before, 1e-9))
            result["requests_per_cpu_s"] = round(result["ok"] / max(after - before, 1e-9))
            result["proxy_rss_kb"] = peak_rss_kb(proxy.pid)
        finally:
            if perf is not None:
                perf.send_signal(signal.SIGINT)
                perf.wait(timeout=60)
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(timeout=120)
            sink.send_signal(signal.SIGTERM)
            sink.wait(timeout=10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
