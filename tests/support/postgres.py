"""A throwaway PostgreSQL cluster for MLflow's SQL store in end-to-end tests: initdb in a fresh
temporary directory, the server on 127.0.0.1:<free port> with its unix socket in that directory,
fsync off (nothing here must survive a crash), stopped and deleted on stop().

PostgreSQL refuses to run as root, and CI runs as root: then every server command runs as the
`postgres` user (created by Debian's package) through runuser, and the directory is made theirs.
It lives directly under the system temp dir because pytest's own tmp dirs are private to root."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from .net import free_port, tail

INSTALL_HINT = ("install Debian's `postgresql` package (scripts/lib.sh TEST_PACKAGES; "
                "scripts/test.sh installs it)")


class PostgresUnavailable(RuntimeError):
    pass


def postgres_bindir() -> Path:
    """The directory of initdb and pg_ctl: $PG_BINDIR, else the newest /usr/lib/postgresql/N/bin."""
    if env := os.environ.get("PG_BINDIR"):
        candidates = [env]
    else:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                            key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
                            reverse=True)
        if found := shutil.which("initdb"):
            candidates.append(str(Path(found).parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise PostgresUnavailable(f"PostgreSQL server binaries (initdb, pg_ctl) not found in "
                              f"{candidates or '/usr/lib/postgresql/*/bin'}: {INSTALL_HINT}")


class PostgresCluster:
    def __init__(self, database: str = "mlflow", user: str = "mlflow"):
        self.bindir = postgres_bindir()
        self.database = database
        self.user = user
        self.port = free_port()
        self.run_as: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(f"running as root and there is no `postgres` user to run "
                                          f"the server as: {INSTALL_HINT}") from None
            self.run_as = "postgres"
        self.dir = Path(tempfile.mkdtemp(prefix="otlp-mlflow-proxy-pg-"))
        self.data = self.dir / "data"
        self.socket_dir = self.dir / "socket"
        self.log_path = self.dir / "postgres.log"
        self.started = False

    @property
    def uri(self) -> str:
        """The SQLAlchemy URL MLflow's --backend-store-uri takes (TCP, trust authentication).
        The driver is named: SQLAlchemy 2.1 (the latest MLflow's) defaults postgresql:// to
        psycopg 3, 2.0 (MLflow 3.6's) to psycopg2; psycopg2 is in both virtualenvs."""
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def dsn(self) -> dict:
        return {"host": "127.0.0.1", "port": self.port, "user": self.user, "dbname": self.database}

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL, cwd=self.dir)
        if result.returncode != 0:
            raise RuntimeError(f"$ {' '.join(cmd)}\nexit code {result.returncode}\n"
                               f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
                               f"\nserver log tail:\n{self.log_tail()}")
        return result

    def start(self) -> "PostgresCluster":
        self.socket_dir.mkdir()
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            for path in (self.dir, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust",
                  "--encoding=UTF8", "--no-sync", "--no-instructions")
        options = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                   f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log_path),
                  "-w", "-t", "60", "start", timeout=90)
        self.started = True
        self._run("createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.user,
                  self.database)
        return self

    def query(self, sql: str, *params) -> list[tuple]:
        import psycopg2
        with psycopg2.connect(**self.dsn()) as conn, conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines) if self.log_path.exists() else "(no server log)"

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
                self.started = False
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
