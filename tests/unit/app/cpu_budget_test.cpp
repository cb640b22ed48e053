#include <catch2/catch.hpp>

#include "app/cpu_budget.hpp"
#include "support/temp_dir.hpp"

using namespace proxy::app;
using proxy::testing::TempDir;

TEST_CASE("cpu.max reads as whole CPUs, rounded up", "[app][cpu]") {
  CHECK(cpus_in_cpu_max("max 100000\n") == std::nullopt);
  CHECK(cpus_in_cpu_max("100000 100000\n") == 1u);
  CHECK(cpus_in_cpu_max("50000 100000") == 1u);
  CHECK(cpus_in_cpu_max("150000 100000\n") == 2u);
  CHECK(cpus_in_cpu_max("400000 100000\n") == 4u);
  CHECK(cpus_in_cpu_max("") == std::nullopt);
  CHECK(cpus_in_cpu_max("0 100000") == std::nullopt);
  CHECK(cpus_in_cpu_max("abc 100000") == std::nullopt);
  CHECK(cpus_in_cpu_max("100000 0") == std::nullopt);
}

TEST_CASE("the tightest cgroup quota on the way down lowers the affinity count", "[app][cpu]") {
  TempDir root("cpu-budget-test");
  const std::string self = "0::/system.slice/proxy.service\n";
  SECTION("no quota anywhere: the affinity mask counts") {
    root.write("system.slice/proxy.service/cpu.max", "max 100000\n");
    CHECK(available_cpus(8, root.path(), self) == 8);
  }
  SECTION("a quota on the service's own cgroup") {
    root.write("system.slice/proxy.service/cpu.max", "150000 100000\n");
    CHECK(available_cpus(8, root.path(), self) == 2);
  }
  SECTION("a tighter quota on an ancestor") {
    root.write("system.slice/cpu.max", "100000 100000\n");
    root.write("system.slice/proxy.service/cpu.max", "300000 100000\n");
    CHECK(available_cpus(8, root.path(), self) == 1);
  }
  SECTION("a quota above the affinity mask does not raise it") {
    root.write("system.slice/proxy.service/cpu.max", "400000 100000\n");
    CHECK(available_cpus(1, root.path(), self) == 1);
  }
  SECTION("a container's own root cgroup (cgroup namespace)") {
    root.write("cpu.max", "100000 100000\n");
    CHECK(available_cpus(4, root.path(), "0::/\n") == 1);
  }
  SECTION("cgroup v1 (no unified line): the affinity mask alone") {
    root.write("system.slice/proxy.service/cpu.max", "100000 100000\n");
    CHECK(available_cpus(4, root.path(), "4:cpu,cpuacct:/system.slice\n") == 4);
  }
}

TEST_CASE("auto I/O threads: one per available CPU, at most two", "[app][cpu]") {
  CHECK(io_thread_count(0, 1) == 1);
  CHECK(io_thread_count(0, 2) == 2);
  CHECK(io_thread_count(0, 16) == 2);
  CHECK(io_thread_count(5, 1) == 5);  // a configured count stands
  CHECK(available_cpus() >= 1);
}
