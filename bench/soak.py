"""Soak: the proxy under hours (or, in CI, a minute) of mixed valid and invalid OTLP traffic while
the fake MLflow behind it fails periodically. Samples the proxy's RSS, open descriptors and queue
depth, and fails when they keep growing, or when any acknowledged span is missing at the end.

    ~/.cache/otlp-mlflow-proxy/venv/bin/python bench/soak.py --seconds 3600 --rate 2000 \
        --durability disk [--binary PATH] [--plot bench/results/soak.png]

Writes a CSV of samples (seconds, rss_kib, fds, acked_spans, delivered_spans, queued_spans,
spool_bytes) to --samples. queued_spans is acknowledged minus delivered: what the proxy holds
(queue plus batches in flight); spool_bytes is the spool's size on disk (durability: disk)."""
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


class SpanLedger:
    """Which span ids were acknowledged and which delivered, as bitmaps indexed by the span
    counter: an hour at thousands of spans/s fits in a few MiB instead of sets of millions."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._acked = bytearray()
        self._delivered = bytearray()
        self.acked = 0
        self.delivered = 0  # distinct: a retried export may deliver a span twice (at least once)

    @staticmethod
    def _set(bits: bytearray, n: int) -> bool:
        byte, bit = divmod(n, 8)
        if byte >= len(bits):
            bits.extend(bytes(max(byte + 1 - len(bits), 1 << 16)))
        if bits[byte] >> bit & 1:
            return False
        bits[byte] |= 1 << bit
        return True

    def ack(self, span_ids: list[int]) -> None:
        with self.lock:
            self.acked += sum(self._set(self._acked, n) for n in span_ids)

    def deliver(self, span_ids: list[int]) -> None:  # called under the fake's lock
        with self.lock:
            self.delivered += sum(self._set(self._delivered, n) for n in span_ids)

    def missing(self) -> int:
        with self.lock:
            return sum(bin(a & ~d & 0xFF).count("1")
                       for a, d in zip(self._acked, self._delivered.ljust(len(self._acked), b"\0")))


class Pacer:
    """Spreads the clients' spans to --rate spans/s overall (0: as fast as they can)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.lock = threading.Lock()
        self.next_slot = time.monotonic()

    def wait(self, spans: int) -> None:
        if self.rate <= 0:
            return
        with self.lock:
            now = time.monotonic()
            self.next_slot = max(self.next_slot, now - 1.0)  # no burst after a stall beyond 1 s
            at = self.next_slot
            self.next_slot += spans / self.rate
        if at > now:
            time.sleep(at - now)


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


def dir_bytes(path: Path) -> int:
    total = 0
    for entry in path.rglob("*"):
        try:
            total += entry.stat().st_size if entry.is_file() else 0
        except FileNotFoundError:  # a segment deleted while we walked
            pass
    return total


def peak(rows: list[tuple], column: int) -> int:
    return max(r[column] for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3600)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0,
                        help="valid spans per second over all clients (0: as fast as possible)")
    parser.add_argument("--durability", choices=("memory", "disk"), default="memory")
    parser.add_argument("--outage-every", type=float, default=20,
                        help="seconds between upstream outages (three 503 answers each)")
    parser.add_argument("--long-outage-every", type=float, default=600,
                        help="seconds between long outages (12 failed exports: with backoff, a minute or so)")
    parser.add_argument("--sample-every", type=float, default=1)
    parser.add_argument("--drain-seconds", type=float, default=180,
                        help="at the end, how long to wait for the proxy to deliver its backlog")
    parser.add_argument("--binary", default=str(proxy_bin()))
    parser.add_argument("--samples", default=str(ROOT / "bench" / "results" / "soak_samples.csv"))
    parser.add_argument("--plot", help="also draw the samples as a PNG (matplotlib)")
    parser.add_argument("--max-growth", type=float, default=1.5,
                        help="fail when the last quarter's peak RSS exceeds the second quarter's by this factor")
    args = parser.parse_args()

    ledger = SpanLedger()
    fake = FakeMlflow(on_export=lambda e: 200 <= e.status < 300 and ledger.deliver(
        [int.from_bytes(s.span_id, "big") for rs in e.request.resource_spans
         for ss in rs.scope_spans for s in ss.spans])).start()
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    config = None
    spool = workdir / "state"
    if args.durability == "disk":
        config = workdir / "soak.yaml"
        config.write_text(f"queue:\n  durability: disk\n  state_dir: {spool}\n  fsync: interval\n")
    proxy = ProxyProcess(workdir, binary=Path(args.binary).resolve(), mlflow_url=fake.url, experiment_name="soak",
                         config=config, stop_timeout=120)
    proxy.start()
    pacer = Pacer(args.rate)
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
                spans = request.resource_spans[0].scope_spans[0].spans
                pacer.wait(len(spans))
                conn.request("POST", "/v1/traces", body=request.SerializeToString(),
                             headers={"Content-Type": "application/x-protobuf"})
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    ledger.ack([int.from_bytes(s.span_id, "big") for s in spans])
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
    next_failure = started + min(10, args.outage_every)
    next_long_outage = started + args.long_outage_every
    while time.monotonic() - started < args.seconds:
        time.sleep(args.sample_every)
        now = time.monotonic()
        if now >= next_failure:  # an upstream outage: a few failed exports the proxy must retry
            with fake.lock:
                fake.script.extend([ScriptedAnswer(503, headers={"Retry-After": "1"})] * 3)
            next_failure = now + args.outage_every
        if now >= next_long_outage:  # MLflow down for a while: the queue fills, then drains
            with fake.lock:
                fake.script.extend([ScriptedAnswer(503, headers={"Retry-After": "1"})] * 12)
            next_long_outage = now + args.long_outage_every
        rss, fds = sample(proxy.proc.pid)
        with ledger.lock:
            acked, delivered = ledger.acked, ledger.delivered
        spool_bytes = dir_bytes(spool) if args.durability == "disk" else 0
        samples.append((round(now - started, 1), rss, fds, acked, delivered, acked - delivered, spool_bytes))
    stop.set()
    for t in threads:
        t.join(10)
    # Let the last outage end and the queue drain before stopping: with durability: disk a
    # SIGTERM leaves the backlog in the spool for the next start, which this run never makes.
    drain_deadline = time.monotonic() + args.drain_seconds
    while time.monotonic() < drain_deadline:
        with ledger.lock:
            if ledger.delivered >= ledger.acked:
                break
        time.sleep(0.5)
    code = proxy.stop(expect_exit_code=None)
    fake.stop()
    missing = ledger.missing()

    Path(args.samples).parent.mkdir(parents=True, exist_ok=True)
    with open(args.samples, "w") as f:
        f.write("seconds,rss_kib,fds,acked_spans,delivered_spans,queued_spans,spool_bytes\n")
        f.writelines(",".join(map(str, s)) + "\n" for s in samples)
    if args.plot:
        import plot_soak  # bench/plot_soak.py, next to this file
        plot_soak.plot(Path(args.samples), Path(args.plot))

    quarter = max(1, len(samples) // 4)
    second = samples[quarter:2 * quarter] if len(samples) >= 4 else samples[:1]
    last = samples[-quarter:]
    early_peak, late_peak = peak(second, 1), peak(last, 1)
    fd_growth = samples[-1][2] - min(s[2] for s in samples)
    # The queue rises during each outage and drains after it; a queue that never gets back
    # down to the second quarter's peak in the whole last quarter is growing without bound.
    queue_floor_late = min(s[5] for s in last)
    queue_peak_early = peak(second, 5)
    print(f"soak {args.seconds:.0f}s ({args.durability}, rate {args.rate or 'unlimited'}): "
          f"acked {ledger.acked} spans, delivered {ledger.delivered}, missing {missing}; "
          f"RSS start {samples[0][1]} KiB, max {peak(samples, 1)} KiB, end {samples[-1][1]} KiB, "
          f"peak {early_peak} KiB (2nd quarter) -> {late_peak} KiB (last quarter); "
          f"fds {samples[0][2]} -> {samples[-1][2]} (max {peak(samples, 2)}); "
          f"queued spans max {peak(samples, 5)}, spool max {peak(samples, 6)} bytes; "
          f"exit code {code}; samples in {args.samples}")
    problems = list(dict.fromkeys(failures))[:5]
    if missing:
        problems.append(f"{missing} acknowledged spans never reached the upstream")
    if late_peak > early_peak * args.max_growth:
        problems.append(f"RSS grew from {early_peak} to {late_peak} KiB")
    if fd_growth > 50:
        problems.append(f"open descriptors grew by {fd_growth}")
    if len(samples) >= 8 and queue_floor_late > max(queue_peak_early, 1000):
        problems.append(f"the queue never drained below {queue_floor_late} spans in the last quarter "
                        f"(second quarter peak {queue_peak_early})")
    if code != 0:
        problems.append(f"proxy exited with {code}")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
