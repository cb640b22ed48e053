#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test: unit tests (CTest), integration
# tests against the real binary, end-to-end tests against a real MLflow server, then the unit and
# integration tests again under AddressSanitizer+UBSan and ThreadSanitizer, a bounded libFuzzer
# run of every fuzz target, and a short soak.
# PROXY_TEST_SANITIZERS=0 skips the sanitizer and fuzz builds (for a quick local run).
source "$(dirname "$0")/lib.sh"

install_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
# The whole run needs about 7 GB on top of the packages: build trees (the sanitizer ones are 1 to
# 2.5 GB each), ccache, two virtualenvs and Maven's cache. Say what there is, and on any failure
# say it again, so that a full disk reads as one.
report_disk "before the build"
set -o errtrace  # the trap fires for failures inside functions too (build_preset)
trap 'report_disk "at the failure"' ERR
ensure_venv
export E2E_REQUIRE_PROXY=1  # a missing binary fails the run instead of skipping tests
pytest=("$VENV_DIR/bin/python" -m pytest -p no:cacheprovider)

log "building (build/: the release preset, Release with the Unix Makefiles generator, tests included)"
build_preset release "$REPO_ROOT/build"

log "unit tests"
ctest --test-dir "$REPO_ROOT/build" --output-on-failure --parallel "$(nproc)"

log "function size: no function in src/ over 80 lines or a cyclomatic complexity of 25 (lizard)"
"$VENV_DIR/bin/lizard" "$REPO_ROOT/src" -l cpp -L 80 -C 25 -w

log "integration tests"
PROXY_BIN="$REPO_ROOT/build/src/otlp-mlflow-proxy" "${pytest[@]}" "$REPO_ROOT/tests/integration"

ensure_koog_agent  # tests/e2e/test_koog_agent.py runs it
log "end-to-end tests (real MLflow, real OpenTelemetry SDK, a real Koog agent)"
PROXY_BIN="$REPO_ROOT/build/src/otlp-mlflow-proxy" "${pytest[@]}" "$REPO_ROOT/tests/e2e"

# The ways the proxy ships (scripts/test-packages.sh): the .deb, the container image and the
# deploy examples, each tested where it runs; the image and the .deb need a Docker daemon, which
# the script starts when it can (and says so, skipping them, when it cannot).
"$REPO_ROOT/scripts/test-packages.sh" "$REPO_ROOT/build"

ensure_mlflow36_venv
log "end-to-end tests against MLflow 3.6.0, the oldest with /v1/traces (-m mlflow36: forwarding, gRPC, Koog normalization, PostgreSQL, versions)"
MLFLOW_BIN="$MLFLOW36_VENV_DIR/bin/mlflow" PROXY_BIN="$REPO_ROOT/build/src/otlp-mlflow-proxy" \
  "${pytest[@]}" -m mlflow36 "$REPO_ROOT/tests/e2e"

if [ "${PROXY_TEST_SANITIZERS:-1}" != "0" ]; then
  log "AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/): unit and integration tests"
  build_preset asan "$REPO_ROOT/build-asan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$REPO_ROOT/build-asan" --output-on-failure --parallel "$(nproc)"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    PROXY_BIN="$REPO_ROOT/build-asan/src/otlp-mlflow-proxy" PROXY_SANITIZED=1 \
    "${pytest[@]}" "$REPO_ROOT/tests/integration"
  release_build_dir "$REPO_ROOT/build-asan"

  log "ThreadSanitizer build (build-tsan/): integration tests (concurrent connections, queue, exporter)"
  build_preset tsan "$REPO_ROOT/build-tsan"
  # scripts/tsan.supp: only what uninstrumented gRPC/Abseil do among themselves (see the file).
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions="$REPO_ROOT/scripts/tsan.supp" \
    PROXY_BIN="$REPO_ROOT/build-tsan/src/otlp-mlflow-proxy" PROXY_SANITIZED=1 \
    "${pytest[@]}" "$REPO_ROOT/tests/integration"
  release_build_dir "$REPO_ROOT/build-tsan"

  # Twelve targets at 35 s each keep the fuzz step near 7 minutes; scripts/fuzz.sh prints one line
  # per target with its executions.
  log "fuzzing (libFuzzer, ASan+UBSan): each target for ${FUZZ_SECONDS:-35}s"
  FUZZ_SECONDS="${FUZZ_SECONDS:-35}" "$REPO_ROOT/scripts/fuzz.sh"
  release_build_dir "$REPO_ROOT/build-fuzz"
fi

log "soak, short run (bench/soak.py --seconds ${SOAK_SECONDS:-45}; run it for an hour by hand)"
"$VENV_DIR/bin/python" "$REPO_ROOT/bench/soak.py" --seconds "${SOAK_SECONDS:-45}" \
  --binary "$REPO_ROOT/build/src/otlp-mlflow-proxy" --samples "$REPO_ROOT/build/soak_samples.csv"
# The benchmark harness on a few seconds of load: every acked span must reach the fake sink and
# the table must be written. The Collector joins only when bench/build-collector.sh has built it
# already (CI does not build Go); the full comparison is bench/compare.sh, by hand.
# (collector: both of its pipelines, attributes and redaction processors.)
compare_systems=proxy
if "$REPO_ROOT/bench/build-collector.sh" --print-path >/dev/null 2>&1; then
  compare_systems=proxy,collector
fi
log "benchmark harness smoke (bench/compare.py --smoke, $compare_systems)"
"$VENV_DIR/bin/python" "$REPO_ROOT/bench/compare.py" --smoke --build-dir "$REPO_ROOT/build" \
  --systems "$compare_systems" --scenarios b512-short-gzip,single --rounds 1 --duration 1 --warmup 0.3 \
  --latency-duration 1 --latency-rate 2000 --out "$REPO_ROOT/build/compare-smoke"
report_disk "at the end"
log "all tests passed"
