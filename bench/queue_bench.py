#!/usr/bin/env python3
"""Acknowledgement throughput and latency of the queue modes, against a fast fake MLflow.

    PROXY_BIN=build/src/otlp-mlflow-proxy python bench/queue_bench.py [--seconds 10]
        [--clients 8] [--spans 10] [--modes memory,always,interval]

Each client is a process with one keep-alive connection posting OTLP protobuf requests of
--spans spans back to back; latency is from sending a request to reading its 200. The upstream
answers 200 at once without decoding, so the proxy's receive, queue and spool path is what is
measured. Prints spans/s and p50/p99 acknowledgement latency per mode, and for the disk modes
how many requests shared one flush (group commit), from the proxy's shutdown log. The client processes share
the machine with the proxy, so on a small machine they are part of what is measured.
Not a test: run it by hand."""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.net import free_port, port_accepts  # noqa: E402


class FastUpstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    spans = 0

    def log_message(self, *args):
        pass

    def _answer(self, body: bytes = b"{}"):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer(b"3.7.0" if self.path == "/version" else b"{}")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer()


def make_body(spans: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    a = rs.resource.attributes.add()
    a.key, a.value.string_value = "service.name", "bench"
    ss = rs.scope_spans.add()
    for i in range(spans):
        s = ss.spans.add()
        s.trace_id = bytes([1] * 16)
        s.span_id = (i + 1).to_bytes(8, "big")
        s.name = "chat gpt-4o"
        s.start_time_unix_nano = 1_700_000_000_000_000_000
        s.end_time_unix_nano = 1_700_000_001_000_000_000
        attr = s.attributes.add()
        attr.key, attr.value.string_value = "gen_ai.input.messages", "x" * 100
    return request.SerializeToString()


def client(port: int, body: bytes, seconds: float, out) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, rejected = [], 0
    end = time.monotonic() + seconds
    headers = {"Content-Type": "application/x-protobuf"}
    while time.monotonic() < end:
        start = time.perf_counter()
        conn.request("POST", "/v1/traces", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            latencies.append(time.perf_counter() - start)
        else:
            rejected += 1
    conn.close()
    out.put((latencies, rejected))


def run_mode(binary: str, upstream: str, mode: str, args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"queue-bench-{mode}-"))
    queue = {"max_bytes": "512MiB"}
    if mode != "memory":
        queue.update({"durability": "disk", "state_dir": str(workdir / "state"),
                      "max_disk_bytes": "4GiB", "fsync": mode, "fsync_interval": "1s"})
    config = {"mlflow": {"experiment_id": "1"}, "queue": queue,
              "receiver": {"io_threads": args.io_threads}, "log": {"level": "info"}}
    (workdir / "proxy.yaml").write_text(json.dumps(config))
    port = free_port()
    log = (workdir / "proxy.log").open("wb")
    proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--mlflow-url", upstream,
                             "--config", str(workdir / "proxy.yaml")], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        while not port_accepts("127.0.0.1", port):
            if proc.poll() is not None:
                raise RuntimeError((workdir / "proxy.log").read_text())
            time.sleep(0.05)
        body = make_body(args.spans)
        out = mp.Queue()
        workers = [mp.Process(target=client, args=(port, body, args.seconds, out))
                   for _ in range(args.clients)]
        for w in workers:
            w.start()
        results = [out.get() for _ in workers]
        for w in workers:
            w.join()
        latencies = sorted(l for r in results for l in r[0])
        rejected = sum(r[1] for r in results)
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()
    flushes = ""
    if match := re.search(r"spool: (\d+) records written in (\d+) flushes",
                          (workdir / "proxy.log").read_text()):
        flushes = f"{int(match.group(1)) / max(1, int(match.group(2))):.1f}"
    shutil.rmtree(workdir, ignore_errors=True)
    requests = len(latencies)
    return {
        "mode": {"memory": "memory", "always": "disk + fsync always",
                 "interval": "disk + fsync interval (1s)", "never": "disk + fsync never"}[mode],
        "requests": requests, "rejected": rejected, "per_flush": flushes,
        "spans_per_s": requests * args.spans / args.seconds,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--spans", type=int, default=10)
    parser.add_argument("--io-threads", type=int, default=2)
    parser.add_argument("--modes", default="memory,always,interval")
    args = parser.parse_args()
    binary = os.environ.get("PROXY_BIN", str(REPO / "build" / "src" / "otlp-mlflow-proxy"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), FastUpstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    upstream = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"{args.clients} clients x {args.seconds:g}s, {args.spans} spans per request, "
          f"{os.cpu_count()} CPUs, proxy {binary}")
    print(f"{'mode':<28} {'spans/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'429/503':>8} {'req/flush':>9}")
    for mode in args.modes.split(","):
        r = run_mode(binary, upstream, mode, args)
        print(f"{r['mode']:<28} {r['spans_per_s']:>10.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['requests']:>9} {r['rejected']:>8} {r['per_flush']:>9}")
    server.shutdown()


if __name__ == "__main__":
    main()
