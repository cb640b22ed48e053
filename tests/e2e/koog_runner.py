"""Builds and runs the real Koog agent in tests/e2e/koog/ (Kotlin, Maven, Koog's mock LLM executor,
Koog's OpenTelemetry feature exporting OTLP/HTTP protobuf).

    jar = build_koog_agent()                      # mvn -q -B package, skipped when up to date
    run = run_koog_agent(proxy, verbose=True, service_name="team-a")
    run.trace_ids                                 # 32-hex OTLP trace ids the agent exported

Environment:
  KOOG_AGENT_JAR   use this jar instead of building tests/e2e/koog/target/koog-agent.jar
  KOOG_AGENT_JAVA  java executable (default: java on PATH)
  MVN              maven executable (default: mvn on PATH)

What Koog 1.0.0 emits for this agent (checked against the spans it exported; the names and keys
are asserted in tests/e2e/test_koog_agent.py): one trace of 11 spans

    create_agent weather-agent                       root; ends only when the agent is closed
      invoke_agent weather-agent
        strategy weather_strategy
          node __start__
          node call_llm
            chat gpt-4o                              answers with a get_weather tool call
          node execute_tool
            execute_tool get_weather
          node send_tool_result
            chat gpt-4o                              answers with the final text
          node __finish__

Content keys (Koog writes "HIDDEN:non-empty" unless setVerbose(true)): gen_ai.input.messages,
gen_ai.output.messages, gen_ai.tool.definitions, system_instructions (no gen_ai. prefix),
gen_ai.tool.call.arguments, gen_ai.tool.call.result, koog.node.input, koog.node.output.
No span events. Every attribute value is a string, numbers included (gen_ai.usage.input_tokens
is "0"): the Kotlin OpenTelemetry SDK 0.3.0 Koog 1.0.0 uses writes them so.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KOOG_DIR = Path(__file__).resolve().parent / "koog"
KOOG_JAR = KOOG_DIR / "target" / "koog-agent.jar"
KOOG_VERSION = "1.0.0"

AGENT_ID = "weather-agent"
STRATEGY = "weather_strategy"
MODEL = "gpt-4o"
TOOL = "get_weather"
DEFAULT_PROMPT = "What is the weather in Paris?"
DEFAULT_SYSTEM_PROMPT = "You are a helpful weather assistant. Use the get_weather tool."
TOOL_RESULT = "Sunny, 21 degrees Celsius, light wind from the west (Paris)"
FINAL_ANSWER = "It is sunny and 21 degrees Celsius in Paris today."
HIDDEN = "HIDDEN:non-empty"  # Koog's own placeholder when not verbose

# Span names of one run, parents before children (see the module docstring).
SPAN_NAMES = [
    f"create_agent {AGENT_ID}",
    f"invoke_agent {AGENT_ID}",
    f"strategy {STRATEGY}",
    "node __start__",
    "node call_llm",
    f"chat {MODEL}",
    "node execute_tool",
    f"execute_tool {TOOL}",
    "node send_tool_result",
    f"chat {MODEL}",
    "node __finish__",
]
# child name -> parent name (the two chat spans have different parents: see PARENTS_OF_CHAT)
PARENTS = {
    f"invoke_agent {AGENT_ID}": f"create_agent {AGENT_ID}",
    f"strategy {STRATEGY}": f"invoke_agent {AGENT_ID}",
    "node __start__": f"strategy {STRATEGY}",
    "node call_llm": f"strategy {STRATEGY}",
    "node execute_tool": f"strategy {STRATEGY}",
    "node send_tool_result": f"strategy {STRATEGY}",
    "node __finish__": f"strategy {STRATEGY}",
    f"execute_tool {TOOL}": "node execute_tool",
}
PARENTS_OF_CHAT = {"node call_llm", "node send_tool_result"}

# The content keys Koog masks itself, per span kind.
CONTENT_KEYS = {
    "create_agent": ["system_instructions"],
    "invoke_agent": ["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions",
                     "system_instructions"],
    "chat": ["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions",
             "system_instructions"],
    "execute_tool": ["gen_ai.tool.call.arguments", "gen_ai.tool.call.result"],
    "node": ["koog.node.input", "koog.node.output"],
    "strategy": [],
}


class KoogBuildError(RuntimeError):
    pass


def java_and_maven() -> tuple[str | None, str | None]:
    return (os.environ.get("KOOG_AGENT_JAVA") or shutil.which("java"),
            os.environ.get("MVN") or shutil.which("mvn"))


def _sources() -> list[Path]:
    return [KOOG_DIR / "pom.xml", *sorted((KOOG_DIR / "src").rglob("*"))]


def jar_is_fresh(jar: Path = KOOG_JAR) -> bool:
    if not jar.exists():
        return False
    built = jar.stat().st_mtime
    return all(p.stat().st_mtime <= built for p in _sources() if p.is_file())


def build_koog_agent(timeout: float = 1200) -> Path:
    """The runnable jar, built with `mvn -q -B package` unless it is newer than its sources.
    Raises KoogBuildError with Maven's output when the build fails."""
    if env := os.environ.get("KOOG_AGENT_JAR"):
        return Path(env)
    if jar_is_fresh():
        return KOOG_JAR
    _, mvn = java_and_maven()
    if mvn is None:
        raise KoogBuildError("mvn not found")
    started = time.monotonic()
    proc = subprocess.run([mvn, "-q", "-B", "package"], cwd=KOOG_DIR, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0 or not KOOG_JAR.exists():
        raise KoogBuildError(
            f"`mvn -q -B package` in {KOOG_DIR} failed with exit code {proc.returncode} after "
            f"{time.monotonic() - started:.0f}s\n--- stdout ---\n{proc.stdout[-8000:]}\n"
            f"--- stderr ---\n{proc.stderr[-8000:]}")
    KOOG_JAR.touch()  # newer than every source even when Maven left the jar as it was
    return KOOG_JAR


@dataclass
class KoogRun:
    """What one run of the agent reported (its JSON on stdout), plus its stderr."""
    report: dict[str, Any]
    stderr: str
    returncode: int
    command: list[str] = field(default_factory=list)

    @property
    def trace_ids(self) -> list[str]:
        return list(self.report.get("trace_ids", []))

    @property
    def trace_id(self) -> str:
        ids = self.trace_ids
        if len(ids) != 1:
            raise AssertionError(f"expected one trace id, got {ids}\n{self.describe()}")
        return ids[0]

    @property
    def span_count(self) -> int:
        return int(self.report.get("span_count", 0))

    @property
    def export_results(self) -> list[str]:
        return list(self.report.get("export_results", []))

    @property
    def all_exports_succeeded(self) -> bool:
        return bool(self.export_results) and all(r == "SUCCESS" for r in self.export_results)

    def describe(self) -> str:
        return (f"$ {' '.join(self.command)}\nexit code {self.returncode}\n"
                f"report: {json.dumps(self.report, indent=1)[:6000]}\n"
                f"stderr tail:\n{self.stderr[-4000:]}")


def run_koog_agent(proxy_or_url: Any, *, verbose: bool, service_name: str,
                   prompt: str | None = None, system_prompt: str | None = None,
                   city: str | None = None,
                   headers: dict[str, str] | None = None,
                   resource: dict[str, str] | None = None, processor: str = "batch",
                   agent_id: str | None = None, jar: Path | None = None,
                   timeout: float = 120) -> KoogRun:
    """Runs the agent once against proxy_or_url (a ProxyProcess, whose .url is the base URL, or a
    base URL string; /v1/traces is appended) and returns its report. Raises AssertionError when
    the agent fails or prints no report. prompt must mention "weather" (the mock LLM keys on it).
    city is the get_weather argument (default "Paris"); the tool's result repeats it."""
    java, _ = java_and_maven()
    if java is None:
        raise AssertionError("java not found")
    base = getattr(proxy_or_url, "url", proxy_or_url).rstrip("/")
    cmd = [java, "-jar", str(jar or build_koog_agent()),
           "--endpoint", f"{base}/v1/traces", "--service-name", service_name,
           "--verbose" if verbose else "--no-verbose", "--processor", processor]
    if agent_id:
        cmd += ["--agent-id", agent_id]
    if prompt is not None:
        cmd += ["--prompt", prompt]
    if system_prompt is not None:
        cmd += ["--system-prompt", system_prompt]
    if city is not None:
        cmd += ["--city", city]
    for k, v in (headers or {}).items():
        cmd += ["--header", f"{k}={v}"]
    for k, v in (resource or {}).items():
        cmd += ["--resource", f"{k}={v}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.setdefault("KOOG_AGENT_LOG_LEVEL", "WARN")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)
    report: dict[str, Any] = {}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            try:
                report = json.loads(line)
                break
            except ValueError:
                pass
    run = KoogRun(report=report, stderr=proc.stderr, returncode=proc.returncode, command=cmd)
    if not report:
        raise AssertionError(f"the Koog agent printed no JSON report\nstdout:\n{proc.stdout[-4000:]}"
                             f"\n{run.describe()}")
    if report.get("error"):
        raise AssertionError(f"the Koog agent failed: {report['error']}\n{run.describe()}")
    return run
