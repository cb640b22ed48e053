"""The README's before/after of one Koog trace in MLflow (docs/mlflow-koog-*.png).

Starts MLflow (the test venv's, or $MLFLOW_BIN) on a fresh SQLite store, runs the real Koog agent
(tests/e2e/koog, verbose, content kept by the proxy's "verbose" policy) once through a proxy with
`normalize: {enabled: false}` and once through a proxy with the defaults, then takes headless
Chromium screenshots of both experiments' trace lists and of each trace's span tree.

    PROXY_BIN=build/src/otlp-mlflow-proxy python scripts/normalization_screenshots.py docs/

Needs: java + mvn (the agent), chromium (Debian package) and playwright-core: `npm install
playwright-core` in a directory named by $PLAYWRIGHT_DIR (default: scripts/; node resolves ES
module imports next to the script, so the script is copied there). Not part of the test command.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from koog_runner import AGENT_ID, SPAN_NAMES, run_koog_agent  # noqa: E402
from support.mlflow_server import MlflowServer  # noqa: E402
from support.proxy_process import ProxyProcess  # noqa: E402

SHOT = ROOT / "scripts" / "mlflow_screenshot.mjs"


def run_one(mlflow, work: Path, name: str, normalize: bool) -> tuple[str, str]:
    config = work / f"{name}.yaml"
    config.write_text("default_route:\n  policy: verbose\n"
                      + ("" if normalize else "  normalize: {enabled: false}\n"))
    proxy = ProxyProcess(work, mlflow_url=mlflow.url, experiment_name=name, config=config,
                         name=name).start()
    try:
        run = run_koog_agent(proxy, verbose=True, service_name="weather-service")
        mlflow.wait_for_spans(None, run.trace_id, len(SPAN_NAMES), timeout=60,
                              require_complete=True)
    finally:
        proxy.stop()
    return mlflow.experiment_id_by_name(name), run.trace_id


def shoot(url: str, out: Path, wait: str, click: str | None = None) -> None:
    script = SHOT
    if where := os.environ.get("PLAYWRIGHT_DIR"):
        script = Path(where) / SHOT.name
        shutil.copyfile(SHOT, script)
    cmd = ["node", str(script), url, str(out.resolve()), wait] + ([click] if click else [])
    subprocess.run(cmd, check=True, timeout=300)
    print("wrote", out)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mlflow = MlflowServer(work / "mlflow").start()
        try:
            for label, normalize in (("before", False), ("after", True)):
                experiment, _ = run_one(mlflow, work, f"koog-{label}", normalize)
                url = f"{mlflow.url}/#/experiments/{experiment}/traces"
                shoot(url, out / f"mlflow-koog-{label}-list.png", " ago")
                try:  # the span tree: best effort, the UI's row markup changes between versions
                    shoot(url, out / f"mlflow-koog-{label}-trace.png", " ago", click=" ago")
                except subprocess.CalledProcessError as e:
                    print("no trace view screenshot:", e)
        finally:
            mlflow.stop()


if __name__ == "__main__":
    main()
