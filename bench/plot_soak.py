"""Draws bench/soak.py's samples CSV: RSS, open descriptors and queued spans over time.

    ~/.cache/otlp-mlflow-proxy/venv/bin/python bench/plot_soak.py SAMPLES.csv OUT.png"""
from __future__ import annotations

import csv
import sys
from pathlib import Path


def plot(samples: Path, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")  # no display
    import matplotlib.pyplot as plt

    with samples.open() as f:
        rows = list(csv.DictReader(f))
    minutes = [float(r["seconds"]) / 60 for r in rows]
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(9, 7))
    axes[0].plot(minutes, [int(r["rss_kib"]) / 1024 for r in rows], color="tab:blue")
    axes[0].set_ylabel("RSS (MiB)")
    axes[0].set_ylim(bottom=0)
    axes[1].plot(minutes, [int(r["fds"]) for r in rows], color="tab:green")
    axes[1].set_ylabel("open fds")
    axes[1].set_ylim(bottom=0)
    axes[2].plot(minutes, [int(r["queued_spans"]) for r in rows], color="tab:red", label="queued spans")
    axes[2].set_ylabel("queued spans")
    axes[2].set_xlabel("minutes")
    if any(int(r.get("spool_bytes") or 0) for r in rows):
        spool = axes[2].twinx()
        spool.plot(minutes, [int(r["spool_bytes"]) / 1024 / 1024 for r in rows], color="tab:gray",
                   linewidth=0.8, label="spool (MiB)")
        spool.set_ylabel("spool on disk (MiB)")
    last = rows[-1]
    fig.suptitle(f"otlp-mlflow-proxy soak: {float(last['seconds']) / 60:.0f} min, "
                 f"{int(last['acked_spans'])} spans acknowledged, {int(last['delivered_spans'])} delivered")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    plot(Path(sys.argv[1]), Path(sys.argv[2]))
