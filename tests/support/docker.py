"""Docker for tests/container: the CLI with a timeout, and containers whose state, health and
logs the tests read. Containers run on the host's network (`--network host`), so they reach the
tests' servers on 127.0.0.1 and no traffic leaves loopback."""
from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest


def docker(*args: str, check: bool = True, timeout: float = 180,
           input: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                            input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} -> {result.returncode}\n"
                             f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


def setting(name: str, default: str | None = None) -> str:
    """A setting of tests/container from the environment; missing, the test fails."""
    value = os.environ.get(name, default)
    if not value:
        pytest.fail(f"{name} is not set (scripts/test-packages.sh sets it)")
    return value


def daemon_answers() -> bool:
    try:
        return docker("info", check=False, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Container:
    """A container started with `docker run -d`; remove() takes it away with its volumes."""

    def __init__(self, name: str, volumes: list[str] | None = None):
        self.name = name
        self.volumes = volumes or []

    @classmethod
    def run(cls, image: str, *args: str, name: str | None = None, network: str = "host",
            volumes: list[str] | None = None, command: list[str] | None = None) -> "Container":
        """`docker run -d --network host ARGS IMAGE COMMAND`; volumes are named volumes this
        container owns (created here, removed with it)."""
        box = cls(name or unique_name("omp-test"), volumes)
        for volume in box.volumes:
            docker("volume", "create", volume)
        docker("run", "-d", "--name", box.name, "--network", network, *args, image,
               *(command or []))
        return box

    def inspect(self) -> dict:
        return json.loads(docker("inspect", self.name).stdout)[0]

    def state(self) -> dict:
        return self.inspect()["State"]

    def health(self) -> str:
        return self.state().get("Health", {}).get("Status", "none")

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def exec(self, *command: str, check: bool = True, user: str | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
        return docker("exec", *(["--user", user] if user else []), self.name, *command,
                      check=check, timeout=timeout)

    def sh(self, script: str, check: bool = True, timeout: float = 300) -> str:
        """Runs a shell script inside; returns its output (stdout and stderr)."""
        result = self.exec("sh", "-ec", script, check=check, timeout=timeout)
        return result.stdout + result.stderr

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)
        for volume in self.volumes:
            docker("volume", "rm", volume, check=False)
