#include "app/cpu_budget.hpp"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace proxy::app {

namespace {

bool read_number(std::string_view text, unsigned long long& value) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc{} && end == text.data() + text.size();
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The cgroup v2 path in /proc/self/cgroup's "0::/path" line; empty without one (cgroup v1).
std::string_view unified_cgroup(std::string_view proc_self_cgroup) {
  while (!proc_self_cgroup.empty()) {
    const auto newline = proc_self_cgroup.find('\n');
    const std::string_view line = proc_self_cgroup.substr(0, newline);
    if (line.starts_with("0::/")) return line.substr(3);
    if (newline == std::string_view::npos) break;
    proc_self_cgroup.remove_prefix(newline + 1);
  }
  return {};
}

unsigned affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return static_cast<unsigned>(std::max(1, CPU_COUNT(&set)));
}

}  // namespace

std::optional<unsigned> cpus_in_cpu_max(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  const auto space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  unsigned long long quota = 0;
  unsigned long long period = 0;
  if (!read_number(text.substr(0, space), quota) || !read_number(text.substr(space + 1), period) ||
      quota == 0 || period == 0) {
    return std::nullopt;  // "max 100000" (no quota) lands here too
  }
  return static_cast<unsigned>(std::min<unsigned long long>((quota + period - 1) / period, 1u << 16));
}

unsigned available_cpus(unsigned affinity, const std::filesystem::path& cgroup_root,
                        std::string_view proc_self_cgroup) {
  unsigned cpus = std::max(1u, affinity);
  const std::string_view cgroup = unified_cgroup(proc_self_cgroup);
  if (cgroup.empty()) return cpus;
  // A quota on any ancestor limits this cgroup too; the tightest one counts. The root's own
  // cpu.max exists only inside a cgroup namespace (a container's view).
  const auto limit_by = [&cpus](const std::filesystem::path& dir) {
    if (auto quota = cpus_in_cpu_max(read_file(dir / "cpu.max"))) cpus = std::min(cpus, *quota);
  };
  std::filesystem::path dir = cgroup_root;
  limit_by(dir);
  for (const auto& part : std::filesystem::path(cgroup).relative_path()) {
    if (part.empty()) continue;  // a trailing separator
    dir /= part;
    limit_by(dir);
  }
  return std::max(1u, cpus);
}

unsigned available_cpus() {
  return available_cpus(affinity_cpus(), "/sys/fs/cgroup", read_file("/proc/self/cgroup"));
}

unsigned io_thread_count(unsigned configured, unsigned cpus) {
  if (configured != 0) return configured;
  return std::clamp(cpus, 1u, 2u);
}

}  // namespace proxy::app
