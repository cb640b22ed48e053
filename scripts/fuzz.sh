#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan (build-fuzz/, or $FUZZ_BUILD_DIR) and
# runs each for FUZZ_SECONDS (default 60) on a copy of its seed corpus and regression inputs. A
# finding fails the run and leaves the input in <build>/findings/<target>/: copy it into
# fuzz/regressions/<target>/ once fixed, so the unit tests replay it for good. Prints one summary
# line per target (executions, rate, coverage, peak RSS), also kept in <build>/fuzz_summary.txt.
# Usage: scripts/fuzz.sh [target ...]
source "$(dirname "$0")/lib.sh"

all_targets=(http_request otlp_protobuf otlp_json decompress config_yaml policy_walk spool_records json_structure wire_policy wire_checks wire_route
             wire_normalize)
build="${FUZZ_BUILD_DIR:-$REPO_ROOT/build-fuzz}"
install_packages "${BUILD_PACKAGES[@]}" clang libclang-rt-14-dev
build_preset fuzz "$build"

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=("${all_targets[@]}")
summary="$build/fuzz_summary.txt"
: >"$summary"
status=0
for target in "${targets[@]}"; do
  work="$build/work/$target"
  findings="$build/findings/$target"
  rm -rf "$work" && mkdir -p "$work" "$findings"
  cp "$REPO_ROOT/fuzz/corpus/$target/"* "$work/" 2>/dev/null || true
  [ -d "$REPO_ROOT/fuzz/regressions/$target" ] && cp "$REPO_ROOT/fuzz/regressions/$target/"* "$work/" 2>/dev/null || true
  log "fuzzing $target for ${seconds}s"
  fuzz_log="$build/fuzz_$target.log"
  result="no findings"
  if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$build/fuzz/fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=2048 \
      -max_len=262144 -timeout=10 -artifact_prefix="$findings/" -print_final_stats=1 "$work" \
      >"$fuzz_log" 2>&1; then
    status=1
    result="FINDING (inputs in $findings)"
    tail -n 40 "$fuzz_log"
  fi
  # libFuzzer's final stats, e.g. "stat::number_of_executed_units: 123456".
  final_stat() { sed -n "s/^stat::$1: *//p" "$fuzz_log" | tail -n 1; }
  coverage="$(grep -oE 'cov: [0-9]+' "$fuzz_log" | tail -n 1 | cut -d' ' -f2)"
  line="fuzz $target: $(final_stat number_of_executed_units) executions in ${seconds}s ($(final_stat average_exec_per_sec)/s), coverage ${coverage:-?}, peak RSS $(final_stat peak_rss_mb) MiB, $result"
  echo "$line" | tee -a "$summary"
done
exit $status
