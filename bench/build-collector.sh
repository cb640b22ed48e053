#!/usr/bin/env bash
# Builds the OpenTelemetry Collector that bench/compare.py measures the proxy against.
#
# The Collector is built with its own builder (ocb) from the Go module proxy, at one pinned
# release, with only what the benchmark pipelines need: the OTLP receiver, the memory limiter,
# the attributes processor (updates the proxy's exact default content keys to a masked value:
# the cheapest equivalent, the primary peer), the redaction processor (masks the values of keys
# matching the content keys as regexes), the transform processor (for trying OTTL variants by
# hand), the batch processor and the OTLP/HTTP exporter (with the MLflow experiment header). Nothing of it goes
# into the repository: sources, module cache and binary live under ~/.cache.
#
# Idempotent: when the binary for this release and this component list exists, it prints its
# path and exits. Prints the binary's path on its last line of stdout.
#
# Usage: bench/build-collector.sh [--print-path]   (--print-path: print the path, build nothing;
#        exits 1 when it is not built yet)
set -euo pipefail

# One release for every module. v0.161.0: the newest release at which the contrib transform
# processors resolve against what the Go module proxy serves here (newer contrib releases need
# packages it does not serve). Core v0.161.0 pairs with the v1.67.0 stable modules.
COLLECTOR_VERSION="${COLLECTOR_VERSION:-v0.161.0}"
CORE_STABLE_VERSION="${CORE_STABLE_VERSION:-v1.67.0}"

CACHE_ROOT="${OTLP_MLFLOW_PROXY_CACHE:-$HOME/.cache/otlp-mlflow-proxy}"
OUT_DIR="$CACHE_ROOT/collector-${COLLECTOR_VERSION}"
BIN="$OUT_DIR/otelcol-bench"

manifest() {
  cat <<EOF
dist:
  name: otelcol-bench
  description: OpenTelemetry Collector for the otlp-mlflow-proxy benchmark
  output_path: $OUT_DIR/src
  version: ${COLLECTOR_VERSION#v}
receivers:
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver ${COLLECTOR_VERSION}
processors:
  - gomod: go.opentelemetry.io/collector/processor/batchprocessor ${COLLECTOR_VERSION}
  - gomod: go.opentelemetry.io/collector/processor/memorylimiterprocessor ${COLLECTOR_VERSION}
  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/processor/attributesprocessor ${COLLECTOR_VERSION}
  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/processor/redactionprocessor ${COLLECTOR_VERSION}
  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor ${COLLECTOR_VERSION}
exporters:
  - gomod: go.opentelemetry.io/collector/exporter/otlphttpexporter ${COLLECTOR_VERSION}
  - gomod: go.opentelemetry.io/collector/exporter/debugexporter ${COLLECTOR_VERSION}
providers:
  - gomod: go.opentelemetry.io/collector/confmap/provider/fileprovider ${CORE_STABLE_VERSION}
  - gomod: go.opentelemetry.io/collector/confmap/provider/envprovider ${CORE_STABLE_VERSION}
  - gomod: go.opentelemetry.io/collector/confmap/provider/yamlprovider ${CORE_STABLE_VERSION}
EOF
}

# The stamp records the manifest the binary was built from, so a changed component list rebuilds.
STAMP="$OUT_DIR/manifest.yaml"
if [[ -x "$BIN" && -f "$STAMP" ]] && diff -q <(manifest) "$STAMP" >/dev/null; then
  echo "$BIN"
  exit 0
fi
if [[ "${1:-}" == "--print-path" ]]; then
  echo "Collector not built yet: run bench/build-collector.sh" >&2
  exit 1
fi

# The Collector's modules at this release need a recent Go (Debian 12's golang-go is 1.19).
command -v go >/dev/null || { echo "build-collector: go (1.25 or later) is not installed" >&2; exit 1; }
go_minor="$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')"
if [[ ! "$go_minor" =~ ^[0-9]+$ ]] || (( go_minor < 25 )); then
  echo "build-collector: $(go env GOVERSION) is too old, the Collector ${COLLECTOR_VERSION} needs Go 1.25 or later" >&2
  exit 1
fi
mkdir -p "$OUT_DIR"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
export CGO_ENABLED=0

BUILDER="$OUT_DIR/bin/builder"
if [[ ! -x "$BUILDER" ]]; then
  echo "build-collector: installing the Collector builder ${COLLECTOR_VERSION}" >&2
  GOBIN="$OUT_DIR/bin" go install "go.opentelemetry.io/collector/cmd/builder@${COLLECTOR_VERSION}"
fi

manifest >"$OUT_DIR/manifest.yaml.new"
echo "build-collector: building otelcol-bench ${COLLECTOR_VERSION} (takes minutes)" >&2
"$BUILDER" --config "$OUT_DIR/manifest.yaml.new" >&2
install -m 0755 "$OUT_DIR/src/otelcol-bench" "$BIN"
mv "$OUT_DIR/manifest.yaml.new" "$STAMP"
"$BIN" --version >&2
echo "$BIN"
