"""A fake MLflow for integration tests and fault injection: it speaks the parts of MLflow the
proxy uses (POST /v1/traces, experiments get-by-name/create, /version, /health), records every
export decoded, and answers with scripted statuses. Never the only proof that MLflow receives
what we send: the e2e tests use the real server."""
from __future__ import annotations

import gzip
import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .net import wait_until


@dataclass
class Export:
    experiment_id: str | None
    headers: dict
    request: ExportTraceServiceRequest
    status: int
    time: float = 0.0  # time.monotonic() on arrival, to measure the proxy's retry delays
    body: bytes = b""  # the request body as sent, decompressed (scripts/capture_traces.py saves it)
    late: bool = False  # answered after a `pause`: the proxy may have given up and sent it again

    def span_ids(self) -> list[str]:
        return [s.span_id.hex() for rs in self.request.resource_spans
                for ss in rs.scope_spans for s in ss.spans]


@dataclass
class ScriptedAnswer:
    status: int
    body: str = "{}"
    headers: dict = field(default_factory=dict)


class FakeMlflow:
    def __init__(self, version: str = "3.7.0", on_export=None, port: int = 0,
                 decodes_gzip: bool | None = None, ssl_context: ssl.SSLContext | None = None):
        """ssl_context: serve https:// with it (tests/support/tls_certs.py makes one; it may
        require client certificates)."""
        self.version = version
        # Whether POST /v1/traces decompresses a gzip body. None: as MLflow of `version` does
        # (3.7 and newer); 3.6 parses the compressed bytes as protobuf and answers 400.
        self.decodes_gzip = decodes_gzip
        # on_export(Export), called under self.lock instead of keeping the export: long runs
        # (bench/soak.py) count what arrived without holding every request in memory.
        self.on_export = on_export
        # Cleared: POST /v1/traces waits (up to 60 s) until it is set again, so spans pile up
        # in the proxy's queue while /health still answers.
        self.accepting = threading.Event()
        self.accepting.set()
        self.exports: list[Export] = []          # every POST /v1/traces, accepted or not
        self.experiments: dict[str, str] = {}    # name -> id
        self.creates: list[str] = []             # every experiments/create call's name
        # name -> how many more get-by-name calls answer "does not exist" although it does
        # (another client creating it at the same moment)
        self.hidden_lookups: dict[str, int] = {}
        self.script: list[ScriptedAnswer] = []   # answers for the next exports, then 200
        # A span attribute key: any export holding a span with it is answered 400, as MLflow
        # refuses a whole request for one span it cannot store (the script is not consumed).
        self.refuse_spans_with: str | None = None
        # Fault behaviours of POST /v1/traces (tests/integration/test_fault_matrix.py):
        # set: read the request, never answer, close the connection once cleared (not recorded)
        self.silent = threading.Event()
        self.min_interval = 0.0  # seconds between two answers: a slow MLflow, one at a time
        self.pause = 0.0         # seconds before answering (recorded as late)
        self.received: list[str] = []  # span ids of every export as it arrives, answered or not
        self._pace_lock = threading.Lock()
        self._last_answer = 0.0
        # (method, path, headers) of every request, exports and REST calls alike
        self.requests: list[tuple[str, str, dict]] = []
        self.connections = 0         # TCP connections accepted (keep-alive reuse shows here)
        self.tls_failures: list[str] = []  # failed TLS handshakes, why
        self.lock = threading.Lock()
        self._connections: set = set()  # open client sockets, closed by stop() like an exit would
        self.ssl_context = ssl_context
        self._server = _Server(self, ("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> "FakeMlflow":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops like a process exit: the listener and every keep-alive connection close."""
        self._server.shutdown()
        self._server.server_close()
        with self.lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _pace(self) -> None:
        """Waits out `pause`, and `min_interval` since the previous answer."""
        if self.pause:
            time.sleep(self.pause)
        if not self.min_interval:
            return
        with self._pace_lock:
            wait = self._last_answer + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_answer = time.monotonic()

    def gzip_decoding(self) -> bool:
        if self.decodes_gzip is not None:
            return self.decodes_gzip
        match = re.match(r"(\d+)\.(\d+)", self.version)
        return bool(match) and (int(match[1]), int(match[2])) >= (3, 7)

    def delivered(self) -> list[Export]:
        with self.lock:
            return [e for e in self.exports if 200 <= e.status < 300]

    def delivered_span_ids(self) -> list[str]:
        return [sid for e in self.delivered() for sid in e.span_ids()]

    def wait_for_spans(self, count: int, timeout: float = 20.0) -> list[str]:
        return wait_until(lambda: (ids := self.delivered_span_ids()) and len(ids) >= count and ids,
                          timeout, what=f"{count} spans at the fake MLflow")

    def _refuses(self, request: ExportTraceServiceRequest) -> bool:
        key = self.refuse_spans_with
        return key is not None and any(a.key == key for rs in request.resource_spans
                                       for ss in rs.scope_spans for s in ss.spans
                                       for a in s.attributes)

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def setup(self):
                super().setup()
                with fake.lock:
                    fake._connections.add(self.connection)

            def finish(self):
                with fake.lock:
                    fake._connections.discard(self.connection)
                super().finish()

            def _answer(self, status: int, body: str = "{}", headers: dict | None = None):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip" and fake.gzip_decoding():
                    data = gzip.decompress(data)
                return data

            def _record(self):
                with fake.lock:
                    fake.requests.append((self.command, urlparse(self.path).path, dict(self.headers)))

            def do_GET(self):
                self._record()
                url = urlparse(self.path)
                if url.path == "/health":
                    return self._answer(200, "OK")
                if url.path == "/version":
                    return self._answer(200, fake.version)
                if url.path == "/api/2.0/mlflow/experiments/get-by-name":
                    name = parse_qs(url.query).get("experiment_name", [""])[0]
                    with fake.lock:
                        experiment_id = fake.experiments.get(name)
                        if fake.hidden_lookups.get(name, 0) > 0:
                            fake.hidden_lookups[name] -= 1
                            experiment_id = None
                    if experiment_id is None:
                        return self._answer(404, json.dumps({
                            "error_code": "RESOURCE_DOES_NOT_EXIST",
                            "message": f"Could not find experiment with name '{name}'"}))
                    return self._answer(200, json.dumps({"experiment": {
                        "experiment_id": experiment_id, "name": name, "lifecycle_stage": "active"}}))
                return self._answer(404, '{"detail":"Not Found"}')

            def do_POST(self):
                self._record()
                url = urlparse(self.path)
                body = self._body()
                if url.path == "/api/2.0/mlflow/experiments/create":
                    name = json.loads(body)["name"]
                    with fake.lock:
                        fake.creates.append(name)
                        if name in fake.experiments:
                            return self._answer(400, json.dumps({
                                "error_code": "RESOURCE_ALREADY_EXISTS",
                                "message": f"Experiment '{name}' already exists."}))
                        experiment_id = str(100 + len(fake.experiments))
                        fake.experiments[name] = experiment_id
                    return self._answer(200, json.dumps({"experiment_id": experiment_id}))
                if url.path != "/v1/traces":
                    return self._answer(404, '{"detail":"Not Found"}')
                request = ExportTraceServiceRequest()
                if self.headers.get("Content-Encoding") == "gzip" and not fake.gzip_decoding():
                    # MLflow 3.6: the compressed bytes are no protobuf it can use.
                    with fake.lock:
                        fake.exports.append(Export(self.headers.get("x-mlflow-experiment-id"),
                                                   dict(self.headers), request, 400,
                                                   time.monotonic()))
                    return self._answer(400, '{"detail":"Invalid OpenTelemetry protobuf format"}')
                request.ParseFromString(body)
                with fake.lock:
                    fake.received += [s.span_id.hex() for rs in request.resource_spans
                                      for ss in rs.scope_spans for s in ss.spans]
                if fake.silent.is_set():
                    while fake.silent.is_set():
                        time.sleep(0.05)
                    self.close_connection = True
                    return
                fake.accepting.wait(60)
                fake._pace()
                with fake.lock:
                    if fake._refuses(request):
                        answer = ScriptedAnswer(400, '{"detail":"span refused"}')
                    elif fake.script:
                        answer = fake.script.pop(0)
                    else:
                        answer = ScriptedAnswer(200, '{"partialSuccess":null}')
                    export = Export(self.headers.get("x-mlflow-experiment-id"), dict(self.headers),
                                    request, answer.status, time.monotonic(), body,
                                    late=fake.pause > 0)
                    if fake.on_export is not None:
                        fake.on_export(export)
                    else:
                        fake.exports.append(export)
                if not request.resource_spans:
                    return self._answer(400, '{"detail":"empty request"}')
                return self._answer(answer.status, answer.body, answer.headers)

        return Handler


class _Server(ThreadingHTTPServer):
    """Counts connections; with TLS, shakes hands in the connection's own thread (so a stalled
    client cannot block accept) and records why a handshake failed."""

    def __init__(self, fake: FakeMlflow, address, handler):
        self.fake = fake
        super().__init__(address, handler)

    def get_request(self):
        sock, address = super().get_request()
        with self.fake.lock:
            self.fake.connections += 1
        if self.fake.ssl_context is not None:
            sock = self.fake.ssl_context.wrap_socket(sock, server_side=True,
                                                     do_handshake_on_connect=False)
        return sock, address

    def finish_request(self, request, client_address):
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(10)
                request.do_handshake()
                request.settimeout(None)
            except (ssl.SSLError, OSError) as e:
                with self.fake.lock:
                    self.fake.tls_failures.append(str(e))
                return
        super().finish_request(request, client_address)
