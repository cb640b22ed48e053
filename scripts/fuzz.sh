#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan (build-fuzz/) and runs each for
# FUZZ_SECONDS (default 60) on a copy of its seed corpus. A finding fails the run and leaves the
# input in build-fuzz/findings/<target>/: copy it into fuzz/regressions/<target>/ once fixed, so
# the unit tests replay it for good. Usage: scripts/fuzz.sh [target ...]
source "$(dirname "$0")/lib.sh"

install_packages "${BUILD_PACKAGES[@]}" clang libclang-rt-14-dev
build_proxy "$REPO_ROOT/build-fuzz" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPROXY_SANITIZE=address,undefined -DPROXY_FUZZ=ON -DPROXY_BUILD_TESTS=OFF

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(http_request otlp_protobuf otlp_json decompress config_yaml)
status=0
for target in "${targets[@]}"; do
  work="$REPO_ROOT/build-fuzz/work/$target"
  findings="$REPO_ROOT/build-fuzz/findings/$target"
  rm -rf "$work" && mkdir -p "$work" "$findings"
  cp "$REPO_ROOT/fuzz/corpus/$target/"* "$work/" 2>/dev/null || true
  [ -d "$REPO_ROOT/fuzz/regressions/$target" ] && cp "$REPO_ROOT/fuzz/regressions/$target/"* "$work/" 2>/dev/null || true
  log "fuzzing $target for ${seconds}s"
  if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$REPO_ROOT/build-fuzz/fuzz/fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=2048 \
      -max_len=262144 -timeout=10 -artifact_prefix="$findings/" -print_final_stats=1 "$work" \
      >"$REPO_ROOT/build-fuzz/fuzz_$target.log" 2>&1; then
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$REPO_ROOT/build-fuzz/fuzz_$target.log" | sed "s/^/  $target /"
  else
    status=1
    tail -n 40 "$REPO_ROOT/build-fuzz/fuzz_$target.log"
    log "fuzz_$target found a problem; inputs in $findings"
  fi
done
exit $status
