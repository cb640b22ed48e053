"""The Debian package (`cpack -G DEB`, scripts/test-packages.sh builds it) on a fresh Debian 12:
`apt-get install ./otlp-mlflow-proxy_<version>_amd64.deb` resolves the computed dependencies from
the host's mirror; the files, the conffile, the system user and the unit are in place and the
unit verifies; the binary runs as that user; remove, then purge, leave nothing but the user."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.docker import setting

PACKAGE = "otlp-mlflow-proxy"
USER = "otlp-mlflow-proxy"
BINARY = "/usr/bin/otlp-mlflow-proxy"
UNIT = "/usr/lib/systemd/system/otlp-mlflow-proxy.service"
CONFIG = "/etc/otlp-mlflow-proxy/config.yaml"
WANTS = "/etc/systemd/system/multi-user.target.wants/otlp-mlflow-proxy.service"
APT = "DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o Dpkg::Use-Pty=0"


@pytest.fixture
def debian(containers):
    """A fresh debian:12 container with the package's folder at /pkg and the host's apt sources,
    with systemd installed (for systemd-analyze; not a dependency of the package)."""
    deb = Path(setting("DEB")).resolve()
    box = containers(setting("BASE_IMAGE", "debian:12"),
                     "-v", f"{deb.parent}:/pkg:ro",
                     "-v", f"{Path(setting('APT_SOURCES')).resolve()}:/etc/apt/sources.list.d/debian.sources:ro",
                     command=["sleep", "infinity"])
    box.sh(f"rm -f /etc/apt/sources.list; apt-get update -qq && {APT} install --no-install-recommends systemd >/dev/null")
    box.deb = deb
    return box


def test_deb_installs_runs_as_its_user_and_removes_cleanly(debian):
    version = re.match(rf"{PACKAGE}_(.+)_amd64\.deb$", debian.deb.name)[1]
    debian.sh(f"{APT} install --no-install-recommends /pkg/{debian.deb.name}")

    files = debian.sh(f"dpkg -L {PACKAGE}")
    for path in (BINARY, UNIT, CONFIG, "/usr/share/doc/otlp-mlflow-proxy/README.md"):
        assert path in files.splitlines(), files
    assert debian.sh(f"cat /var/lib/dpkg/info/{PACKAGE}.conffiles").split() == [CONFIG]
    depends = debian.sh(f"dpkg-query -W -f '${{Depends}}' {PACKAGE}")
    assert "libgrpc++" in depends and "adduser" in depends, depends
    assert "not found" not in debian.sh(f"ldd {BINARY}")

    # The system user of the unit's User=, and the configuration readable by its group only.
    name, _, uid, _, _, home, shell = debian.sh(f"getent passwd {USER}").strip().split(":")
    assert int(uid) < 1000 and home == "/var/lib/otlp-mlflow-proxy" and shell == "/usr/sbin/nologin"
    assert debian.sh(f"stat -c '%U:%G %a' {CONFIG}").strip() == f"root:{USER} 640"

    assert debian.sh(f"{BINARY} --version").strip().endswith(version)
    checked = debian.exec("runuser", "-u", USER, "--", BINARY, "--check-config", "--config", CONFIG)
    assert 'state_dir: "/var/lib/otlp-mlflow-proxy"' in checked.stdout, checked.stderr

    unit = debian.sh(f"cat {UNIT}")
    assert f"ExecStart={BINARY} --config {CONFIG}" in unit
    assert "User=otlp-mlflow-proxy" in unit and "DynamicUser=yes" in unit
    verify = debian.exec("systemd-analyze", "verify", UNIT, check=False)
    assert verify.returncode == 0 and PACKAGE not in verify.stderr, verify.stderr
    assert debian.sh(f"readlink -f {WANTS}").strip() == UNIT  # enabled on a first install

    debian.sh(f"{APT} remove {PACKAGE}")
    gone = debian.sh(f"for f in {BINARY} {UNIT} {WANTS}; do [ -e $f ] && echo $f; done; true")
    assert gone.strip() == "", gone
    assert debian.sh(f"dpkg-query -W -f '${{db:Status-Abbrev}}' {PACKAGE}").strip() == "rc"
    assert debian.sh(f"cat {CONFIG}")  # remove keeps the configuration

    debian.sh(f"{APT} purge {PACKAGE}")
    assert debian.exec("dpkg-query", "-W", PACKAGE, check=False).returncode != 0
    assert debian.sh("ls -A /etc/otlp-mlflow-proxy /var/lib/otlp-mlflow-proxy 2>&1 || true").count(
        "No such file") == 2
    assert debian.sh("dpkg-statoverride --list || true").strip() == ""
    assert debian.sh(f"getent passwd {USER}").startswith(f"{USER}:")  # kept, as Debian does
