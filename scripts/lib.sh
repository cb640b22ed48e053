# Shared by the scripts: paths, package lists, idempotent installs. Source it; do not run it.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${OTLP_MLFLOW_PROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otlp-mlflow-proxy}"
VENV_DIR="${OTLP_MLFLOW_PROXY_VENV:-$CACHE_DIR/venv}"
# A second virtualenv with MLflow 3.6.0 (the oldest with /v1/traces) for the e2e version matrix.
MLFLOW36_VENV_DIR="${OTLP_MLFLOW_PROXY_MLFLOW36_VENV:-$CACHE_DIR/venv-mlflow-3.6.0}"
# A third with the Kubernetes schema checker for the deploy examples (scripts/test-packages.sh).
DEPLOY_VENV_DIR="${OTLP_MLFLOW_PROXY_DEPLOY_VENV:-$CACHE_DIR/venv-deploy}"
# ccache keys on paths relative to the checkout, so a fresh clone (CI) reuses earlier builds.
export CCACHE_BASEDIR="$REPO_ROOT"

# Debian 12 packages that building the proxy needs.
BUILD_PACKAGES=(build-essential cmake ninja-build pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev libprotobuf-dev protobuf-compiler
  libspdlog-dev libyaml-cpp-dev zlib1g-dev libzstd-dev libdeflate-dev libssl-dev libre2-dev
  libjemalloc-dev  # the daemon's allocator
  libgrpc++-dev protobuf-compiler-grpc  # the OTLP/gRPC receiver
  prometheus-cpp-dev libsystemd-dev)  # /metrics (core only), sd_notify
# And what the tests need on top.
TEST_PACKAGES=(catch2 python3 python3-venv curl systemd  # systemd-analyze for the unit tests
  openjdk-17-jdk-headless maven  # the real Koog agent in tests/e2e/koog/
  postgresql)  # MLflow on a PostgreSQL store (tests/e2e/test_postgres_store.py runs its own cluster)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages that are missing; does nothing (and needs no network) otherwise.
install_packages() {
  local missing=()
  for package in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A Python virtualenv in $1 with the pinned packages of the requirements file $2, made again only
# when that file changes.
ensure_requirements_venv() {
  local dir="$1" requirements="$2"
  local stamp="$dir/.requirements.sha256"
  local wanted
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then return 0; fi
  log "preparing the Python virtualenv in $dir (${requirements#"$REPO_ROOT"/})"
  mkdir -p "$CACHE_DIR"
  [ -x "$dir/bin/python" ] || python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check --upgrade pip
  "$dir/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  echo "$wanted" >"$stamp"
}

# The test virtualenv: MLflow and the OpenTelemetry SDK.
ensure_venv() { ensure_requirements_venv "$VENV_DIR" "$REPO_ROOT/tests/requirements.txt"; }

# The MLflow 3.6.0 server of the end-to-end version matrix, in its own virtualenv (its pins clash
# with the latest MLflow's).
ensure_mlflow36_venv() {
  ensure_requirements_venv "$MLFLOW36_VENV_DIR" "$REPO_ROOT/tests/requirements-mlflow-3.6.txt"
}

# The real Koog agent of the end-to-end tests (tests/e2e/koog/, Kotlin, Maven): builds
# target/koog-agent.jar unless it is newer than pom.xml and src/. The first build downloads Koog and
# the Kotlin compiler into ~/.m2; later ones work offline.
ensure_koog_agent() {
  local dir="$REPO_ROOT/tests/e2e/koog" jar="$REPO_ROOT/tests/e2e/koog/target/koog-agent.jar"
  if [ -f "$jar" ] && [ -z "$(find "$dir/pom.xml" "$dir/src" -newer "$jar" -print -quit)" ]; then
    return 0
  fi
  log "building the Koog test agent (tests/e2e/koog/, mvn package)"
  (cd "$dir" && mvn -q -B package)
  touch "$jar"
}

# Logs the free space where the builds and the caches go, and how much ccache holds.
report_disk() {
  local where="$1" avail
  avail="$(df -h --output=avail "$REPO_ROOT" | tail -n 1 | tr -d ' ')"
  log "disk $where: $avail free on $(df --output=target "$REPO_ROOT" | tail -n 1)$(
    command -v ccache >/dev/null && ccache -s 2>/dev/null | sed -n 's/.*Cache size (GB): *\([0-9.]*\).*/; ccache holds \1 GB/p')"
}

# Removes a build tree whose stage has passed: a sanitizer build is 1 to 2.5 GB, and CI's disk
# once filled up holding all of them. PROXY_KEEP_BUILDS=1 keeps them (to debug a run); a failed
# stage stops the run before this, so its tree stays either way.
release_build_dir() {
  if [ "${PROXY_KEEP_BUILDS:-0}" = "1" ]; then return 0; fi
  log "removing $1 (its stage passed; PROXY_KEEP_BUILDS=1 keeps it)"
  rm -rf "$1"
}

# Configures and builds into $1 with extra CMake arguments after it.
build_proxy() {
  local dir="$1"; shift
  local launcher=()
  if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  cmake -S "$REPO_ROOT" -B "$dir" -G Ninja "${launcher[@]}" "$@" >/dev/null
  cmake --build "$dir" --parallel "$(nproc)"
}

# Configures a preset of CMakePresets.json (release, asan, tsan, fuzz) into $2 and builds it, with
# extra CMake arguments after them: the builds CI runs are the ones users and IDEs get.
build_preset() {
  local preset="$1" dir="$2"; shift 2
  local configure=(cmake --preset "$preset" -B "$dir") output
  if command -v ccache >/dev/null; then configure+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  if ! output="$(cd "$REPO_ROOT" && "${configure[@]}" "$@" 2>&1)"; then
    # A folder configured with another generator (build/ was Ninja's before the release preset)
    # cannot be configured again: drop its cache, keep its outputs.
    grep -q "Does not match the generator used previously" <<<"$output" || { echo "$output" >&2; return 1; }
    log "$dir was configured with another generator than the $preset preset's: configuring it afresh"
    rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
    (cd "$REPO_ROOT" && "${configure[@]}" "$@" >/dev/null)
  fi
  cmake --build "$dir" --parallel "$(nproc)"
}
