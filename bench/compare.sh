#!/usr/bin/env bash
# One command for the side-by-side benchmark (docs/benchmarks.md): installs what it needs, builds
# the proxy and the bench tools in Release (build-release/), builds the OpenTelemetry Collector
# (bench/build-collector.sh, cached under ~/.cache), then runs bench/compare.py with the venv's
# Python. Arguments go to compare.py, e.g.:
#   bench/compare.sh                        # proxy vs the Collector's two pipelines (attributes,
#                                           # redaction), 3 rounds -> bench/results/compare.*
#   bench/compare.sh --mlflow               # and direct export vs the proxy against a real MLflow
#   bench/compare.sh --systems proxy --rounds 1
#   bench/compare.sh --scenarios b512-short,b512-long --host-note "quiet: load average 0.2"
source "$(dirname "$0")/../scripts/lib.sh"

install_packages "${BUILD_PACKAGES[@]}" python3 python3-venv util-linux  # Go (1.25 or later) comes with the machine; Debian 12 has only 1.19
ensure_venv

BUILD_DIR="${BENCH_BUILD_DIR:-$REPO_ROOT/build-release}"
log "building the proxy and the bench tools (Release, $BUILD_DIR)"
build_proxy "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DPROXY_BUILD_TESTS=OFF

collector=()
if [[ " $* " != *" --systems proxy "* && " $* " != *" --mlflow-only "* ]]; then
  log "building the OpenTelemetry Collector (bench/build-collector.sh; cached after the first time)"
  collector=(--collector-bin "$("$REPO_ROOT/bench/build-collector.sh" | tail -n 1)")
fi

log "running bench/compare.py $*"
exec "$VENV_DIR/bin/python" "$REPO_ROOT/bench/compare.py" --build-dir "$BUILD_DIR" "${collector[@]}" "$@"
