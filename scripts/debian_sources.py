#!/usr/bin/env python3
"""Prints the Debian entries of this machine's apt sources for another Debian release, as one
deb822 file, so that containers and debootstrapped base images use the host's own mirror and no
file of the repository names one.

    scripts/debian_sources.py [--release bookworm] [--mirror]

Reads /etc/apt/sources.list and /etc/apt/sources.list.d/*.list (one-line format) and *.sources
(deb822). An entry is Debian's when one of its suites is the host's codename or
<codename>-updates / -security; those suites are renamed for --release (the host's own codename
by default). --mirror prints only the URI of the main archive (the one serving <release>), for
debootstrap. Exits 1 when there is none.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

APT = Path("/etc/apt")
SUFFIXES = ("", "-updates", "-security")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclass
class Entry:
    uris: list[str]
    suites: list[str]
    components: list[str]


def os_codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    sys.exit("no VERSION_CODENAME in /etc/os-release")


def deb822_entries(text: str) -> list[Entry]:
    entries = []
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in paragraph.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:  # a continuation line
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        entries.append(Entry(fields.get("uris", "").split(), fields.get("suites", "").split(),
                             fields.get("components", "").split()))
    return entries


def one_line_entries(text: str) -> list[Entry]:
    entries = []
    for line in text.splitlines():
        line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()  # drop [options]
        if len(line) >= 3 and line[0] == "deb":
            entries.append(Entry([line[1]], [line[2]], line[3:]))
    return entries


def host_entries() -> list[Entry]:
    entries = []
    files = [APT / "sources.list", *sorted((APT / "sources.list.d").glob("*.list"))]
    for path in files:
        if path.is_file():
            entries += one_line_entries(path.read_text())
    for path in sorted((APT / "sources.list.d").glob("*.sources")):
        entries += deb822_entries(path.read_text())
    return entries


def debian_entries(host_codename: str, release: str) -> list[Entry]:
    """Debian's entries, their suites renamed for `release`."""
    wanted = {host_codename + s: release + s for s in SUFFIXES}
    result = []
    for entry in host_entries():
        suites = [wanted[s] for s in entry.suites if s in wanted]
        if suites:
            result.append(Entry(entry.uris, suites, entry.components or ["main"]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", help="the Debian codename to write entries for")
    parser.add_argument("--mirror", action="store_true", help="print the main archive's URI only")
    args = parser.parse_args()
    host = os_codename()
    release = args.release or host
    entries = debian_entries(host, release)
    if args.mirror:
        main_archive = [uri for e in entries if release in e.suites for uri in e.uris]
        if not main_archive:
            sys.exit(f"no apt source of this machine serves Debian {host}")
        print(main_archive[0])
        return
    if not entries:
        sys.exit(f"no apt source of this machine serves Debian {host}")
    print(f"# Debian {release} from this machine's apt sources (scripts/debian_sources.py)")
    for entry in entries:
        print(f"\nTypes: deb\nURIs: {' '.join(entry.uris)}\nSuites: {' '.join(entry.suites)}\n"
              f"Components: {' '.join(entry.components)}\nSigned-By: {KEYRING}")


if __name__ == "__main__":
    main()
