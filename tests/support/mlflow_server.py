"""A real `mlflow server` for end-to-end tests, plus a small REST client that reads traces back.

What MLflow 3.17 returns (checked against a live 3.17.2 server; see also tests/e2e/test_harness_selfcheck.py):

* ``POST /api/3.0/mlflow/traces/search`` with
  ``{"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "1"}}]}``
  answers ``{"traces": [TraceInfo...], "next_page_token": "..."}`` (``{}`` when there is none).
  A TraceInfo: ``trace_id`` ("tr-" + 32 hex), ``trace_location.mlflow_experiment.experiment_id``,
  ``request_time``, ``execution_duration``, ``state`` (IN_PROGRESS until the root span arrives,
  then OK or ERROR after the root's status), ``trace_metadata`` (e.g. ``mlflow.trace.tokenUsage``
  as a JSON string), ``tags`` (resource attributes such as ``service.name`` end up here). No spans.
* ``GET /api/3.0/mlflow/traces/get?trace_id=tr-<hex>&allow_partial=true`` answers
  ``{"trace": {"trace_info": {...}, "spans": [...]}}``; an unknown id answers 404
  ``RESOURCE_DOES_NOT_EXIST``. Without ``allow_partial`` the server sleeps up to 3 s retrying when
  spans are missing, so always pass it. Spans are OTLP protobuf rendered as JSON with the proto
  field names: ``trace_id``/``span_id``/``parent_span_id`` base64, ``name``,
  ``start_time_unix_nano``/``end_time_unix_nano`` numbers, ``attributes`` a list of
  ``{"key", "value": AnyValue}`` (``string_value``, ``int_value`` as a JSON number, ``double_value``,
  ``bool_value``, ``array_value.values``, ``kvlist_value.values``), ``events`` a list of
  ``{"time_unix_nano", "name", "attributes"}``, ``status`` ``{}`` for UNSET or
  ``{"code": "STATUS_CODE_ERROR", "message": "..."}``. Span kind, resource, scope: absent. The
  root span has no ``parent_span_id`` key.
* MLflow stores attribute values JSON-encoded (``json.dumps(value)``) and decodes them when it
  renders the AnyValue, so types survive, with one lossy rule (``sanitize_attributes``): a *string*
  attribute whose text is itself JSON of a string, object or array comes back *parsed*
  (``'{"a": 1}'`` -> kvlist ``{"a": 1}``; ``'[..]'`` -> array). See ``expected_mlflow_value``.
* MLflow adds attributes: ``mlflow.traceRequestId`` on every span, ``mlflow.spanType`` when it can
  classify the span (from ``gen_ai.operation.name``), ``mlflow.spanInputs``/``mlflow.spanOutputs``,
  ``mlflow.chat.tokenUsage``, ``mlflow.llm.model``, ``mlflow.llm.cost`` and so on.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import requests

from .net import free_port, tail

STATUS_NAMES = {0: "UNSET", 1: "OK", 2: "ERROR"}


class MlflowError(RuntimeError):
    def __init__(self, method: str, url: str, status: int, body: str):
        super().__init__(f"{method} {url} -> HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body

    @property
    def error_code(self) -> str | None:
        try:
            return json.loads(self.body).get("error_code")
        except (ValueError, AttributeError):
            return None


# --------------------------------------------------------------------------------------------
# Decoding what MLflow returns
# --------------------------------------------------------------------------------------------

def _id_to_hex(value: str | bytes | None, nbytes: int) -> str | None:
    """An id as lowercase hex. MLflow's v3 JSON gives base64 of the raw bytes; accept hex too."""
    if value in (None, "", b""):
        return None
    if isinstance(value, bytes):
        return value.hex()
    s = value.removeprefix("tr-")
    if len(s) == 2 * nbytes and all(c in "0123456789abcdefABCDEF" for c in s):
        return s.lower()
    raw = base64.b64decode(s)
    return raw.hex()


def _get(d: dict, snake: str, default=None):
    """A field by its proto name or its lowerCamelCase JSON name."""
    if snake in d:
        return d[snake]
    parts = snake.split("_")
    camel = parts[0] + "".join(p.title() for p in parts[1:])
    return d.get(camel, default)


def decode_any_value(v: dict | None) -> Any:
    """An OTLP AnyValue rendered as JSON (proto names or lowerCamelCase) -> a Python value."""
    if not v:
        return None
    if (x := _get(v, "string_value")) is not None:
        return x
    if (x := _get(v, "bool_value")) is not None:
        return x if isinstance(x, bool) else str(x).lower() == "true"
    if (x := _get(v, "int_value")) is not None:
        return int(x)
    if (x := _get(v, "double_value")) is not None:
        return float(x)
    if (x := _get(v, "array_value")) is not None:
        return [decode_any_value(e) for e in x.get("values", [])]
    if (x := _get(v, "kvlist_value")) is not None:
        return {kv["key"]: decode_any_value(kv.get("value")) for kv in x.get("values", [])}
    if (x := _get(v, "bytes_value")) is not None:
        return base64.b64decode(x)
    raise ValueError(f"unknown AnyValue shape: {v!r}")


def decode_attributes(attrs: Any, json_encoded: bool = False) -> dict[str, Any]:
    """Attributes as {key: python value}. Accepts the v3 list of {key, value: AnyValue} or
    MLflow's internal dict of JSON-encoded strings (json_encoded=True, e.g. the trace artifact)."""
    if not attrs:
        return {}
    if isinstance(attrs, list):
        return {kv["key"]: decode_any_value(kv.get("value")) for kv in attrs}
    if isinstance(attrs, dict):
        if not json_encoded:
            return dict(attrs)
        out = {}
        for k, v in attrs.items():
            if isinstance(v, str):
                try:
                    v = json.loads(v)
                except ValueError:
                    pass
            out[k] = v
        return out
    raise ValueError(f"unknown attributes shape: {attrs!r}")


def decode_status(status: dict | None) -> tuple[str, str]:
    """(code, message) with code one of UNSET, OK, ERROR."""
    status = status or {}
    code = status.get("code", 0)
    if isinstance(code, int):
        name = STATUS_NAMES.get(code, str(code))
    else:
        name = str(code).removeprefix("STATUS_CODE_")
    return name, status.get("message") or ""


def expected_mlflow_value(value: Any, parses_json_strings: bool = True) -> Any:
    """What MLflow 3.17 gives back for an attribute value we sent.

    OTel SDK sequences (tuples) come back as lists. A string whose text is JSON of a string,
    object or array comes back parsed (MLflow's ``sanitize_attributes`` strips what it takes for a
    second layer of JSON encoding); strings such as "2", "true" or "null" stay strings.
    parses_json_strings=False: MLflow 3.6, which has no sanitize_attributes and gives every string
    back as sent (checked against a live 3.6.0 server)."""
    if isinstance(value, (tuple, list)):
        return [expected_mlflow_value(v, parses_json_strings) for v in value]
    if isinstance(value, str) and parses_json_strings:
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        if isinstance(parsed, (str, dict, list)):
            return parsed
    return value


@dataclass
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass
class MlflowSpan:
    """One span as MLflow returned it, normalized: hex ids, python attribute values."""
    name: str
    trace_id: str  # 32 hex
    span_id: str  # 16 hex
    parent_span_id: str | None  # 16 hex, None for a root
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: dict[str, Any]
    status_code: str  # UNSET, OK, ERROR
    status_message: str
    events: list[SpanEvent]
    raw: dict = field(repr=False)
    parses_json_strings: bool = True  # the server's JSON-string rule (see expected_mlflow_value)

    @property
    def user_attributes(self) -> dict[str, Any]:
        """The attributes without the ``mlflow.*`` keys MLflow adds."""
        return {k: v for k, v in self.attributes.items() if not k.startswith("mlflow.")}

    @property
    def span_type(self) -> str | None:
        return self.attributes.get("mlflow.spanType")


def normalize_span(raw: dict) -> MlflowSpan:
    """A span from the v3 ``traces/get`` response (or MLflow's internal span dict) normalized."""
    attrs = raw.get("attributes")
    json_encoded = isinstance(attrs, dict)  # internal Span.to_dict() format
    status_code, status_message = decode_status(raw.get("status"))
    events = [
        SpanEvent(
            name=e.get("name", ""),
            time_unix_nano=int(_get(e, "time_unix_nano", 0) or 0),
            attributes=decode_attributes(e.get("attributes"), json_encoded=False),
        )
        for e in raw.get("events", []) or []
    ]
    return MlflowSpan(
        name=raw.get("name", ""),
        trace_id=_id_to_hex(_get(raw, "trace_id"), 16) or "",
        span_id=_id_to_hex(_get(raw, "span_id"), 8) or "",
        parent_span_id=_id_to_hex(_get(raw, "parent_span_id"), 8),
        start_time_unix_nano=int(_get(raw, "start_time_unix_nano", 0) or 0),
        end_time_unix_nano=int(_get(raw, "end_time_unix_nano", 0) or 0),
        attributes=decode_attributes(attrs, json_encoded=json_encoded),
        status_code=status_code,
        status_message=status_message,
        events=events,
        raw=raw,
    )


@dataclass
class MlflowTrace:
    trace_id: str  # "tr-" + 32 hex
    experiment_id: str | None
    state: str
    tags: dict[str, str]
    metadata: dict[str, str]
    spans: list[MlflowSpan]
    raw: dict = field(repr=False)

    @property
    def trace_id_hex(self) -> str:
        return self.trace_id.removeprefix("tr-")

    def span(self, name: str) -> MlflowSpan:
        found = [s for s in self.spans if s.name == name]
        if len(found) != 1:
            raise AssertionError(
                f"expected exactly one span named {name!r}, found {len(found)}; "
                f"spans: {[s.name for s in self.spans]}")
        return found[0]

    def by_id(self) -> dict[str, MlflowSpan]:
        return {s.span_id: s for s in self.spans}

    @property
    def roots(self) -> list[MlflowSpan]:
        return [s for s in self.spans if s.parent_span_id is None]

    def dump(self) -> str:
        """A readable rendering for assertion messages."""
        return json.dumps(self.raw, indent=1, sort_keys=True, default=str)[:20000]


def normalize_trace(raw: dict) -> MlflowTrace:
    """The ``trace`` object of the v3 ``traces/get`` response normalized."""
    info = raw.get("trace_info", {})
    loc = info.get("trace_location", {}) or {}
    return MlflowTrace(
        trace_id=info.get("trace_id", ""),
        experiment_id=(loc.get("mlflow_experiment") or {}).get("experiment_id"),
        state=info.get("state", ""),
        tags=info.get("tags", {}) or {},
        metadata=info.get("trace_metadata", {}) or {},
        spans=[normalize_span(s) for s in raw.get("spans", []) or []],
        raw=raw,
    )


def mlflow_trace_id(trace_id_hex: str | int) -> str:
    """The MLflow trace id of an OTLP trace id: "tr-" + 32 lowercase hex."""
    if isinstance(trace_id_hex, int):
        trace_id_hex = format(trace_id_hex, "032x")
    s = trace_id_hex.lower()
    return s if s.startswith("tr-") else "tr-" + s


# --------------------------------------------------------------------------------------------
# REST client
# --------------------------------------------------------------------------------------------

class MlflowClient:
    """The few REST calls the tests need, against any MLflow tracking server."""

    def __init__(self, url: str, request_timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.request_timeout = request_timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no HTTP(S)_PROXY for 127.0.0.1
        self._batch_get_only = False  # MLflow 3.6: no traces/get (see get_trace_raw)
        self._version: tuple[int, int] | None = None

    # -- plumbing --
    def _call(self, method: str, path: str, *, params=None, json_body=None,
              ok: Iterable[int] = (200,)) -> requests.Response:
        url = self.url + path
        r = self.session.request(method, url, params=params, json=json_body,
                                 timeout=self.request_timeout)
        if r.status_code not in ok:
            raise MlflowError(method, r.url, r.status_code, r.text)
        return r

    def version(self) -> str:
        return self._call("GET", "/version").text.strip()

    def health(self) -> bool:
        try:
            return self.session.get(self.url + "/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    # -- experiments --
    def create_experiment(self, name: str) -> str:
        r = self._call("POST", "/api/2.0/mlflow/experiments/create", json_body={"name": name})
        return r.json()["experiment_id"]

    def get_experiment_by_name(self, name: str) -> dict | None:
        """The experiment object, or None when there is none by that name."""
        r = self._call("GET", "/api/2.0/mlflow/experiments/get-by-name",
                       params={"experiment_name": name}, ok=(200, 404))
        if r.status_code == 404:
            return None
        return r.json()["experiment"]

    def get_experiment(self, experiment_id: str) -> dict | None:
        r = self._call("GET", "/api/2.0/mlflow/experiments/get",
                       params={"experiment_id": experiment_id}, ok=(200, 404))
        return None if r.status_code == 404 else r.json()["experiment"]

    def experiment_id_by_name(self, name: str) -> str | None:
        exp = self.get_experiment_by_name(name)
        return exp["experiment_id"] if exp else None

    # -- traces --
    def search_traces(self, experiment_id: str, filter_string: str | None = None,
                      max_results: int = 500) -> list[dict]:
        """Every TraceInfo of the experiment (raw dicts, all pages). No spans: use get_trace."""
        out: list[dict] = []
        page_token = None
        while True:
            body: dict[str, Any] = {
                "locations": [{"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": str(experiment_id)}}],
                "max_results": max_results,
            }
            if filter_string:
                body["filter"] = filter_string
            if page_token:
                body["page_token"] = page_token
            data = self._call("POST", "/api/3.0/mlflow/traces/search", json_body=body).json()
            out.extend(data.get("traces", []))
            page_token = data.get("next_page_token")
            if not page_token:
                return out

    def trace_ids(self, experiment_id: str) -> list[str]:
        return [t["trace_id"] for t in self.search_traces(experiment_id)]

    def get_trace_raw(self, trace_id: str) -> dict | None:
        """The raw ``trace`` object (trace_info and spans), or None when MLflow has no such trace.

        MLflow 3.6 has no ``traces/get``: its ``GET /api/3.0/mlflow/traces/<trace_id>`` route
        (GetTraceInfoV3, info only) takes the path's last segment as a trace id and answers 404
        ``Trace with ID 'get' not found.``, which looks like a missing trace. There the complete
        trace comes from ``GET /api/3.0/mlflow/traces/batchGet?trace_ids=...`` (BatchGetTraces,
        ``{"traces": [Trace...]}``, ``{}`` for an unknown id; same Trace shape as traces/get)."""
        tid = mlflow_trace_id(trace_id)
        if not self._batch_get_only:
            r = self._call("GET", "/api/3.0/mlflow/traces/get",
                           params={"trace_id": tid, "allow_partial": "true"}, ok=(200, 404))
            if r.status_code == 200:
                return r.json()["trace"]
            if "'get'" not in r.text:
                return None
            self._batch_get_only = True  # this server predates traces/get
        traces = self._call("GET", "/api/3.0/mlflow/traces/batchGet",
                            params={"trace_ids": tid}).json().get("traces", [])
        return next((t for t in traces if t.get("trace_info", {}).get("trace_id") == tid), None)

    def get_trace(self, trace_id: str) -> MlflowTrace | None:
        raw = self.get_trace_raw(trace_id)
        if raw is None:
            return None
        trace = normalize_trace(raw)
        if not self.parses_json_strings():
            for span in trace.spans:
                span.parses_json_strings = False
        return trace

    def version_tuple(self) -> tuple[int, int]:
        """(major, minor) of GET /version, read once."""
        if self._version is None:
            match = re.match(r"(\d+)\.(\d+)", self.version())
            if not match:
                raise AssertionError(f"MLflow at {self.url} reports no version: {self.version()!r}")
            self._version = (int(match[1]), int(match[2]))
        return self._version

    def parses_json_strings(self) -> bool:
        """Whether string attributes holding JSON come back parsed (MLflow's sanitize_attributes,
        checked in 3.17.2) or as sent (checked in 3.6.0). It came with the fix of mlflow/mlflow
        issue 18767, filed against 3.6; releases between were not checked, 3.7 is assumed."""
        return self.version_tuple() >= (3, 7)

    def wait_for_trace(self, trace_id: str, timeout: float = 30.0,
                       diagnostics: Callable[[], str] | None = None) -> MlflowTrace:
        return self.wait_for_spans(None, trace_id, 1, timeout=timeout, diagnostics=diagnostics)

    def wait_for_spans(self, experiment_id: str | None, trace_id: str, expected_span_count: int,
                       timeout: float = 30.0, *,
                       diagnostics: Callable[[], str] | None = None,
                       require_complete: bool = False) -> MlflowTrace:
        """Polls until MLflow holds at least expected_span_count spans of the trace, then checks
        that the trace sits in experiment_id (unless None) and returns it normalized.

        require_complete: also wait until the trace state is no longer IN_PROGRESS.
        On timeout or a wrong experiment, raises AssertionError with what MLflow holds, plus
        diagnostics() (e.g. the proxy's log tail)."""
        tid = mlflow_trace_id(trace_id)
        deadline = time.monotonic() + timeout
        delay = 0.05
        last: MlflowTrace | None = None
        last_error: Exception | None = None
        while True:
            try:
                last = self.get_trace(tid)
                last_error = None
            except (requests.RequestException, MlflowError) as e:
                last_error = e
            if last is not None and len(last.spans) >= expected_span_count and (
                    not require_complete or last.state != "IN_PROGRESS"):
                break
            if time.monotonic() >= deadline:
                raise AssertionError(self._describe_missing(
                    experiment_id, tid, expected_span_count, timeout, last, last_error, diagnostics))
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        if experiment_id is not None and str(last.experiment_id) != str(experiment_id):
            raise AssertionError(
                f"trace {tid} landed in experiment {last.experiment_id}, expected {experiment_id}\n"
                f"trace: {last.dump()}" + _diag(diagnostics))
        return last

    def _describe_missing(self, experiment_id, tid, expected, timeout, last, last_error,
                          diagnostics) -> str:
        msg = [f"timed out after {timeout:.0f}s waiting for {expected} span(s) of trace {tid}"]
        if last_error is not None:
            msg.append(f"last error: {last_error}")
        if last is None:
            msg.append("MLflow has no such trace")
        else:
            msg.append(f"MLflow has {len(last.spans)} span(s) in experiment {last.experiment_id}, "
                       f"state {last.state}: {[s.name for s in last.spans]}\n{last.dump()}")
        if experiment_id is not None:
            try:
                ids = self.trace_ids(experiment_id)
                msg.append(f"experiment {experiment_id} holds traces: {ids}")
            except Exception as e:  # noqa: BLE001 - diagnostics only
                msg.append(f"(search in experiment {experiment_id} failed: {e})")
        return "\n".join(msg) + _diag(diagnostics)


def _diag(diagnostics: Callable[[], str] | None) -> str:
    if diagnostics is None:
        return ""
    try:
        return "\n--- diagnostics ---\n" + diagnostics()
    except Exception as e:  # noqa: BLE001
        return f"\n(diagnostics failed: {e})"


# --------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------

def mlflow_executable() -> str:
    """$MLFLOW_BIN, else the `mlflow` next to the running interpreter (the venv's), else PATH."""
    if env := os.environ.get("MLFLOW_BIN"):
        return env
    candidate = Path(sys.executable).parent / "mlflow"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("mlflow")
    if not found:
        raise RuntimeError("no `mlflow` executable: set MLFLOW_BIN or install tests/requirements.txt")
    return found


class MlflowServer(MlflowClient):
    """`mlflow server` on a SQLite store in workdir (or `backend_store_uri`), listening on
    127.0.0.1:<free port>.

    The FastAPI/uvicorn server (the default) is required: /v1/traces does not exist under
    gunicorn or waitress. Startup takes 5-10 s (database migrations on a fresh file)."""

    def __init__(self, workdir: Path | str, port: int | None = None, workers: int = 1,
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None,
                 startup_timeout: float = 120.0, warmup: bool = True,
                 backend_store_uri: str | None = None, tls: tuple[str, str, str] | None = None):
        """tls: (certificate file, key file, CA file): serve https:// through uvicorn's own TLS
        (--uvicorn-opts), and trust the CA in this client."""
        self.workdir = Path(workdir)
        self.backend_store_uri = backend_store_uri or f"sqlite:///{self.workdir / 'mlflow.db'}"
        self.port = port or free_port()
        super().__init__(f"{'https' if tls else 'http'}://127.0.0.1:{self.port}")
        if tls:
            cert, key, ca = tls
            self.session.verify = ca
            extra_args = [*(extra_args or []),
                          "--uvicorn-opts", f"--ssl-certfile {cert} --ssl-keyfile {key}"]
        self.workers = workers
        self.extra_args = list(extra_args or [])
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.warmup = warmup
        self.log_path = self.workdir / "mlflow-server.log"
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    @property
    def command(self) -> list[str]:
        return [
            mlflow_executable(), "server",
            "--backend-store-uri", self.backend_store_uri,
            "--default-artifact-root", str(self.workdir / "artifacts"),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--workers", str(self.workers),
            *self.extra_args,
        ]

    def start(self) -> "MlflowServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "artifacts").mkdir(exist_ok=True)
        env = dict(os.environ)
        for k in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
            env.pop(k, None)
        env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
                    "PYTHONUNBUFFERED": "1"})
        env.update(self.extra_env)
        self._log_file = self.log_path.open("ab")
        self._log_file.write(("$ " + " ".join(self.command) + "\n").encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(self.command, cwd=self.workdir, env=env,
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while not self.health():
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._close_log()
                raise RuntimeError(f"mlflow server exited with {rc} during startup; log tail:\n"
                                   f"{self.log_tail()}")
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"mlflow server not healthy after {self.startup_timeout:.0f}s; "
                                   f"log tail:\n{self.log_tail()}")
            time.sleep(0.2)
        if self.warmup:
            self._warm_up()
        return self

    def _warm_up(self) -> None:
        """The first /v1/traces request carrying GenAI content takes seconds (MLflow's lazy
        imports for message-format and cost translation); pay that here, with a generous timeout,
        instead of inside an exporter's deadline. Leaves one Koog-shaped trace in the Default
        experiment (id 0), which no test uses."""
        from .otel_clients import send_koog_trace
        sent = send_koog_trace(self.url, experiment_id="0", service_name="mlflow-warm-up",
                               timeout=120)
        if not sent.all_exports_succeeded:
            raise RuntimeError(f"mlflow warm-up export failed: {sent.export_results}\n"
                               f"log tail:\n{self.log_tail()}")
        self.request_timeout, saved = 120, self.request_timeout
        try:
            self.search_traces("0")
            self.get_trace(sent.trace_id)
        finally:
            self.request_timeout = saved

    def log_tail(self, lines: int = 80) -> str:
        return tail(self.log_path, lines)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM to the whole process group (uvicorn workers included), then SIGKILL."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        else:
            # the leader is gone; make sure no worker of its group survives
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._close_log()
        self.session.close()
        return self.proc.returncode

    def _close_log(self):
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
