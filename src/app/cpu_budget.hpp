// How many CPUs this process may use, for sizing its threads by default.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

namespace proxy::app {

// The CPUs in this process's affinity mask (taskset, systemd CPUAffinity=), lowered by a cgroup
// v2 CPU quota (docker --cpus, systemd CPUQuota=) on its cgroup or any ancestor. At least 1.
unsigned available_cpus();

// The same, with the cgroup filesystem's root and this process's cgroup line
// (/proc/self/cgroup) passed in, for tests.
unsigned available_cpus(unsigned affinity_cpus, const std::filesystem::path& cgroup_root,
                        std::string_view proc_self_cgroup);

// cpu.max ("QUOTA PERIOD" in microseconds) as whole CPUs, rounded up; nullopt for "max" (no
// quota) or text that is not a quota.
std::optional<unsigned> cpus_in_cpu_max(std::string_view text);

// receiver.io_threads: the configured count, or for "auto" (0) one thread per available CPU, at
// most 2. A second I/O thread on a single CPU only adds thread switches (a futex wake-up per
// request between the two threads sharing the io_context); beyond two, the exporter's thread
// and the kernel's network work want the other CPUs.
unsigned io_thread_count(unsigned configured, unsigned cpus);

}  // namespace proxy::app
