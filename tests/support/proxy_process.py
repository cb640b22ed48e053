"""The otlp-mlflow-proxy binary as a child process on free loopback ports."""
from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from .net import free_port, port_accepts, tail

__all__ = ["ProxyProcess", "ProxyError", "default_proxy_bin", "proxy_bin", "free_port",
           "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]

# Variables the proxy honours; stripped from the inherited environment so a developer's shell
# cannot change what a test configures (pass them through `env=` to test them on purpose).
_SCRUBBED_ENV_PREFIXES = ("OTLP_MLFLOW_PROXY_", "MLFLOW_TRACKING_", "MLFLOW_EXPERIMENT_")


class ProxyError(RuntimeError):
    pass


def default_proxy_bin() -> Path:
    return REPO_ROOT / "build" / "src" / "otlp-mlflow-proxy"


def proxy_bin() -> Path:
    """$PROXY_BIN, else <repo>/build/src/otlp-mlflow-proxy."""
    env = os.environ.get("PROXY_BIN")
    return Path(env).resolve() if env else default_proxy_bin()


@functools.lru_cache(maxsize=8)
def supported_flags(binary: str) -> frozenset[str]:
    """The long flags `<binary> --help` mentions (empty if --help fails)."""
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, timeout=10, text=True,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(re.findall(r"(--[a-z][a-z0-9-]*)", out.stdout + out.stderr))


class ProxyProcess:
    """Starts the proxy with `--listen 127.0.0.1:<port> --mlflow-url <url>` plus options.

    Listeners the binary advertises in --help besides the OTLP/HTTP one (--grpc-listen,
    --admin-listen) get free ports too, so proxies never fight over 4317/13133.
    stdout and stderr go to `log_path`."""

    def __init__(self, workdir: Path | str, *, mlflow_url: str | None,
                 binary: Path | str | None = None, port: int | None = None,
                 experiment_name: str | None = None, experiment_id: str | None = None,
                 config: Path | str | None = None, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None, startup_timeout: float = 15.0,
                 expect_exit_code: int | None = 0, stop_timeout: float = 30.0,
                 name: str = "proxy"):
        self.workdir = Path(workdir)
        self.binary = Path(binary) if binary else proxy_bin()
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.mlflow_url = mlflow_url
        self.experiment_name = experiment_name
        self.experiment_id = experiment_id
        self.config = Path(config) if config else None
        self.extra_args = list(extra_args or [])
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.expect_exit_code = expect_exit_code
        self.stop_timeout = stop_timeout
        self.name = name
        self.log_path = self.workdir / f"{name}-{self.port}.log"
        self.grpc_port: int | None = None
        self.admin_port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self._log_file = None

    # -- addresses --
    @property
    def url(self) -> str:
        """Base URL of the OTLP/HTTP receiver (append /v1/traces)."""
        return f"http://{self.host}:{self.port}"

    @property
    def traces_url(self) -> str:
        return self.url + "/v1/traces"

    @property
    def admin_url(self) -> str | None:
        return f"http://{self.host}:{self.admin_port}" if self.admin_port else None

    @property
    def grpc_target(self) -> str | None:
        return f"{self.host}:{self.grpc_port}" if self.grpc_port else None

    # -- lifecycle --
    def command(self) -> list[str]:
        cmd = [str(self.binary), "--listen", f"{self.host}:{self.port}"]
        if self.mlflow_url:
            cmd += ["--mlflow-url", self.mlflow_url]
        if self.experiment_name is not None:
            cmd += ["--experiment-name", self.experiment_name]
        if self.experiment_id is not None:
            cmd += ["--experiment-id", str(self.experiment_id)]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        flags = supported_flags(str(self.binary))
        given = set(self.extra_args)
        if "--grpc-listen" in flags and "--grpc-listen" not in given:
            self.grpc_port = self.grpc_port or free_port()
            cmd += ["--grpc-listen", f"{self.host}:{self.grpc_port}"]
        if "--admin-listen" in flags and "--admin-listen" not in given:
            self.admin_port = self.admin_port or free_port()
            cmd += ["--admin-listen", f"{self.host}:{self.admin_port}"]
        return cmd + self.extra_args

    def start(self) -> "ProxyProcess":
        if not self.binary.exists():
            raise ProxyError(f"proxy binary {self.binary} does not exist (build it, or set PROXY_BIN)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(_SCRUBBED_ENV_PREFIXES)}
        env.update(self.extra_env)
        cmd = self.command()
        self._log_file = self.log_path.open("ab")
        self._log_file.write(("$ " + " ".join(cmd) + "\n").encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=env, stdout=self._log_file,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        while not port_accepts(self.host, self.port):
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                self._close_log()
                raise ProxyError(f"proxy exited with {self.returncode} during startup; "
                                 f"command: {' '.join(cmd)}\nlog tail:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                self.kill()
                raise ProxyError(f"proxy did not accept connections on {self.host}:{self.port} "
                                 f"within {self.startup_timeout:.0f}s\nlog tail:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        self.returncode = self.proc.wait(timeout)
        return self.returncode

    def stop(self, *, timeout: float | None = None, expect_exit_code: Any = "default") -> int | None:
        """SIGTERM, wait (the proxy drains), SIGKILL after the timeout. Checks the exit code
        (expect_exit_code, default the constructor's; None: no check) and raises ProxyError with
        the log tail when it differs or the process had to be killed."""
        if self.proc is None:
            return None
        expected = self.expect_exit_code if expect_exit_code == "default" else expect_exit_code
        timeout = self.stop_timeout if timeout is None else timeout
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                killed = True
                self.proc.kill()
                self.proc.wait(10)
        self.returncode = self.proc.returncode
        self._close_log()
        if killed:
            raise ProxyError(f"proxy did not exit within {timeout:.0f}s of SIGTERM (killed)\n"
                             f"log tail:\n{self.log_tail()}")
        if expected is not None and self.returncode != expected:
            raise ProxyError(f"proxy exited with {self.returncode}, expected {expected}\n"
                             f"log tail:\n{self.log_tail()}")
        return self.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
            self.returncode = self.proc.returncode
        self._close_log()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 80) -> str:
        return tail(self.log_path, lines)

    def describe(self) -> str:
        """For assertion messages: the command, state and log tail."""
        state = "running" if self.running() else f"exited {self.proc.returncode if self.proc else '-'}"
        return f"proxy {self.url} ({state}), log {self.log_path}:\n{self.log_tail()}"

    def _close_log(self):
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if exc[0] is None:
            self.stop()
        else:
            self.kill()
