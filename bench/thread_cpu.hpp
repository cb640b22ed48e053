// CPU-time measurement shared by the single-thread microbenchmarks: they report spans per
// CPU-second of the measuring thread, so another process taking the core mid-run does not count
// against the figure.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

namespace bench {

inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs step(body) over the pool, round robin, for about `seconds` of this thread's CPU time
// (the clock is read every `per_check` steps); spans per CPU-second. A step returning false
// stops the program: a benchmark must not report figures of work that failed. `who` names the
// benchmark in that message.
template <typename Step>
double spans_per_cpu_second(const std::vector<std::string>& pool, int spans_per_request,
                            double seconds, const char* who, int per_check, Step step) {
  const double start = thread_cpu_seconds();
  std::uint64_t spans = 0;
  double elapsed = 0;
  std::size_t i = 0;
  while (elapsed < seconds) {
    for (int n = 0; n < per_check; ++n, ++i) {
      if (!step(pool[i % pool.size()])) {
        std::fprintf(stderr, "%s: a request failed\n", who);
        std::exit(1);
      }
      spans += static_cast<std::uint64_t>(spans_per_request);
    }
    elapsed = thread_cpu_seconds() - start;
  }
  return static_cast<double>(spans) / elapsed;
}

}  // namespace bench
