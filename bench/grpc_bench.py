#!/usr/bin/env python3
"""OTLP/gRPC against OTLP/HTTP: acknowledged spans/s and p50/p99 latency of the same requests
through each front door of one proxy, against a fast fake MLflow.

    PROXY_BIN=build/src/otlp-mlflow-proxy python bench/grpc_bench.py [--seconds 10]
        [--clients 4] [--spans 10] [--proxy-cpu 0] [--client-cpus 1]

The proxy runs pinned to --proxy-cpu (one core, io_threads 1) and the client processes to
--client-cpus, so the figures are the proxy's on one core rather than the clients'. Each client
sends protobuf requests of --spans spans back to back: HTTP over one keep-alive connection,
gRPC over one channel (unary Export calls, uncompressed, then gzip). Memory durability; the
upstream answers 200 at once, so the receive, decode, route and queue path is what is measured.
Not a test: run it by hand (the numbers move with whatever else the machine runs)."""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from queue_bench import FastUpstream, make_body  # noqa: E402
from support.net import free_port, port_accepts  # noqa: E402


def http_client(port: int, body: bytes, seconds: float, cpus, out) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, rejected = [], 0
    headers = {"Content-Type": "application/x-protobuf"}
    end = time.monotonic() + seconds
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


def grpc_client(port: int, body: bytes, seconds: float, cpus, gzip: bool, out) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    import grpc
    latencies, rejected = [], 0
    compression = grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export")  # bytes in and out
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            try:
                export(body, timeout=30, compression=compression)
                latencies.append(time.perf_counter() - start)
            except grpc.RpcError:
                rejected += 1
    out.put((latencies, rejected))


def measure(target, args_for, clients: int) -> tuple[list[float], int]:
    out = mp.Queue()
    workers = [mp.Process(target=target, args=(*args_for, out)) for _ in range(clients)]
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    return sorted(l for r in results for l in r[0]), sum(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--spans", type=int, default=10)
    parser.add_argument("--proxy-cpu", type=int, default=0)
    parser.add_argument("--client-cpus", default="1", help="comma-separated, empty: any")
    args = parser.parse_args()
    binary = os.environ.get("PROXY_BIN", str(REPO / "build" / "src" / "otlp-mlflow-proxy"))
    client_cpus = {int(c) for c in args.client_cpus.split(",") if c}

    from http.server import ThreadingHTTPServer
    server = ThreadingHTTPServer(("127.0.0.1", 0), FastUpstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    workdir = Path(tempfile.mkdtemp(prefix="grpc-bench-"))
    (workdir / "proxy.yaml").write_text(json.dumps({
        "mlflow": {"experiment_id": "1"}, "queue": {"max_bytes": "512MiB"},
        "receiver": {"io_threads": 1}}))
    http_port, grpc_port = free_port(), free_port()
    log = (workdir / "proxy.log").open("wb")
    proc = subprocess.Popen(
        ["taskset", "-c", str(args.proxy_cpu), binary, "--listen", f"127.0.0.1:{http_port}",
         "--grpc-listen", f"127.0.0.1:{grpc_port}", "--config", str(workdir / "proxy.yaml"),
         "--mlflow-url", f"http://127.0.0.1:{server.server_address[1]}"],
        stdout=log, stderr=subprocess.STDOUT)
    body = make_body(args.spans)
    print(f"{args.clients} clients x {args.seconds:g}s, {args.spans} spans ({len(body)} bytes) per "
          f"request; proxy on CPU {args.proxy_cpu}, clients on {sorted(client_cpus) or 'any'}")
    print(f"{'front door':<22} {'requests/s':>10} {'spans/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'refused':>8}")
    try:
        while not port_accepts("127.0.0.1", http_port):
            if proc.poll() is not None:
                raise RuntimeError((workdir / "proxy.log").read_text())
            time.sleep(0.05)
        runs = [("OTLP/HTTP protobuf", http_client, (http_port, body, args.seconds, client_cpus)),
                ("OTLP/gRPC", grpc_client, (grpc_port, body, args.seconds, client_cpus, False)),
                ("OTLP/gRPC gzip", grpc_client, (grpc_port, body, args.seconds, client_cpus, True))]
        for name, target, target_args in runs:
            latencies, refused = measure(target, target_args, args.clients)
            n = len(latencies)
            p50 = 1000 * latencies[n // 2] if n else float("nan")
            p99 = 1000 * latencies[int(n * 0.99)] if n else float("nan")
            print(f"{name:<22} {n / args.seconds:>10.0f} {n * args.spans / args.seconds:>10.0f} "
                  f"{p50:>8.2f} {p99:>8.2f} {refused:>8}")
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()
        server.shutdown()


if __name__ == "__main__":
    main()
