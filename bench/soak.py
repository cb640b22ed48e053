"""Soak: the proxy under hours (or, in CI, a minute) of mixed valid and invalid OTLP traffic while
the fake MLflow behind it fails periodically. Samples the proxy's RSS and open descriptors and
fails when they keep growing, or when any acknowledged span is missing at the end.

    ~/.cache/otlp-mlflow-proxy/venv/bin/python bench/soak.py --seconds 3600 [--binary PATH]

Prints a CSV of samples (seconds, rss_kib, fds, acked_spans, delivered_spans) to --samples."""
from __future__ import annotations

import argparse
import gzip
import http.client
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

from support.fake_mlflow import FakeMlflow, ScriptedAnswer  # noqa: E402
from support.proxy_process import ProxyProcess, proxy_bin  # noqa: E402


def make_request(rng: random.Random, counter: list[int]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", f"soak-{rng.randrange(4)}"
    ss = rs.scope_spans.add()
    trace_id = rng.randbytes(16)
    for _ in range(rng.randrange(1, 20)):
        counter[0] += 1
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = counter[0].to_bytes(8, "big")
        span.name = "chat gpt-4o"
        attr = span.attributes.add()
        attr.key = "gen_ai.input.messages"
        attr.value.string_value = "x" * rng.randrange(100, 2000)
    return request


def invalid_body(rng: random.Random) -> tuple[bytes, dict]:
    choice = rng.randrange(5)
    if choice == 0:
        # resource_spans declared 100 bytes long, then cut short: truncated protobuf
        return b"\x0a\x64" + rng.randbytes(rng.randrange(1, 50)), {"Content-Type": "application/x-protobuf"}
    if choice == 1:
        return b"{not json", {"Content-Type": "application/json"}
    if choice == 2:
        return gzip.compress(b"abc")[:-4], {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
    if choice == 3:
        return b"x", {"Content-Type": "text/plain"}
    return b"", {"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": "not-a-number"}


def sample(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3600)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--binary", default=str(proxy_bin()))
    parser.add_argument("--samples", default=str(ROOT / "bench" / "results" / "soak_samples.csv"))
    parser.add_argument("--max-growth", type=float, default=1.5,
                        help="fail when the last quarter's peak RSS exceeds the second quarter's by this factor")
    args = parser.parse_args()

    fake = FakeMlflow().start()
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    proxy = ProxyProcess(workdir, binary=Path(args.binary).resolve(), mlflow_url=fake.url, experiment_name="soak",
                         stop_timeout=120)
    proxy.start()
    acked: set[str] = set()
    acked_lock = threading.Lock()
    stop = threading.Event()
    counter = [0]
    counter_lock = threading.Lock()
    failures: list[str] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=30)
        while not stop.is_set():
            try:
                if rng.random() < 0.2:
                    body, headers = invalid_body(rng)
                    conn.request("POST", "/v1/traces", body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    if response.status < 400:
                        failures.append(f"invalid request answered {response.status}")
                    if response.getheader("Connection") == "close":
                        conn.close()
                    continue
                with counter_lock:
                    request = make_request(rng, counter)
                conn.request("POST", "/v1/traces", body=request.SerializeToString(),
                             headers={"Content-Type": "application/x-protobuf"})
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    with acked_lock:
                        acked.update(s.span_id.hex() for s in request.resource_spans[0].scope_spans[0].spans)
                elif response.status not in (429, 503):
                    failures.append(f"valid request answered {response.status}")
                else:
                    time.sleep(0.2)
            except (OSError, http.client.HTTPException):
                conn.close()
                time.sleep(0.1)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    for t in threads:
        t.start()
    samples = []
    started = time.monotonic()
    next_failure = started + 10
    while time.monotonic() - started < args.seconds:
        time.sleep(1)
        now = time.monotonic()
        if now >= next_failure:  # an upstream outage of a few failed exports, every ~20 s
            with fake.lock:
                fake.script.extend([ScriptedAnswer(503, headers={"Retry-After": "1"})] * 3)
            next_failure = now + 20
        rss, fds = sample(proxy.proc.pid)
        with acked_lock:
            acked_count = len(acked)
        samples.append((round(now - started, 1), rss, fds, acked_count, len(fake.delivered_span_ids())))
    stop.set()
    for t in threads:
        t.join(10)
    code = proxy.stop(expect_exit_code=None)
    delivered = set(fake.delivered_span_ids())
    fake.stop()

    Path(args.samples).parent.mkdir(parents=True, exist_ok=True)
    with open(args.samples, "w") as f:
        f.write("seconds,rss_kib,fds,acked_spans,delivered_spans\n")
        f.writelines(",".join(map(str, s)) + "\n" for s in samples)
    missing = acked - delivered
    quarter = max(1, len(samples) // 4)
    early_peak = max(s[1] for s in samples[quarter:2 * quarter]) if len(samples) >= 4 else samples[0][1]
    late_peak = max(s[1] for s in samples[-quarter:])
    fd_growth = samples[-1][2] - min(s[2] for s in samples)
    print(f"soak {args.seconds:.0f}s: acked {len(acked)} spans, delivered {len(delivered)}, missing {len(missing)}, "
          f"RSS peak {early_peak} KiB (2nd quarter) -> {late_peak} KiB (last quarter), "
          f"fds {samples[0][2]} -> {samples[-1][2]}, exit code {code}, samples in {args.samples}")
    problems = list(dict.fromkeys(failures))[:5]
    if missing:
        problems.append(f"{len(missing)} acknowledged spans never reached the upstream")
    if late_peak > early_peak * args.max_growth:
        problems.append(f"RSS grew from {early_peak} to {late_peak} KiB")
    if fd_growth > 50:
        problems.append(f"open descriptors grew by {fd_growth}")
    if code != 0:
        problems.append(f"proxy exited with {code}")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
