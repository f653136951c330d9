// The worker pool: where workers run, and that the calling thread (worker 0) gets its own
// CPU affinity back after each run.
#include <doctest/doctest.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "runtime/thread_pool.h"

using namespace lutra;

TEST_CASE("workers go to distinct usable CPUs, one per core before any SMT sibling") {
  const int cores = default_thread_count(), usable = usable_cpu_count();
  REQUIRE(cores >= 1);
  REQUIRE(cores <= usable);
  for (int n = 1; n <= usable; ++n) {
    std::vector<int> cpus = worker_cpus(n);
    REQUIRE(cpus.size() == size_t(n));
    std::vector<int> sorted = cpus;
    std::sort(sorted.begin(), sorted.end());
    CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
    if (n <= cores) CHECK(worker_cpus(cores)[size_t(n - 1)] == cpus.back());  // a prefix of the core list
  }
  CHECK(worker_cpus(usable + 1).empty());  // more workers than CPUs: none pinned
}

TEST_CASE("on big.LITTLE CPUs workers go to the performance cores first, and only there by default") {
  const uint64_t GHz = 1000000000;
  // Raspberry Pi 5: four alike Cortex-A76 cores.
  CorePlan pi5 = plan_cores({{0, 2400 * GHz / 1000, false}, {1, 2400 * GHz / 1000, false},
                             {2, 2400 * GHz / 1000, false}, {3, 2400 * GHz / 1000, false}});
  CHECK(pi5.cpus == std::vector<int>{0, 1, 2, 3});
  CHECK(pi5.performance == 4);
  // RK3588 (Orange Pi 5): LITTLE Cortex-A55 at 1.8 GHz on CPUs 0-3, Cortex-A76 at 2.4 GHz on
  // 4-7. The clocks alone (3/4) would not tell them apart; the design does.
  std::vector<CoreInfo> rk3588;
  for (int c = 0; c < 4; ++c) rk3588.push_back({c, 1800 * GHz / 1000, true});
  for (int c = 4; c < 8; ++c) rk3588.push_back({c, 2400 * GHz / 1000, false});
  CorePlan rk = plan_cores(rk3588);
  CHECK(rk.cpus == std::vector<int>{4, 5, 6, 7, 0, 1, 2, 3});
  CHECK(rk.performance == 4);
  // A phone: one prime core, three big, four LITTLE (Cortex-X3, A715, A510).
  std::vector<CoreInfo> phone;
  for (int c = 0; c < 4; ++c) phone.push_back({c, 2000 * GHz / 1000, true});
  for (int c = 4; c < 7; ++c) phone.push_back({c, 2800 * GHz / 1000, false});
  phone.push_back({7, 3200 * GHz / 1000, false});
  CorePlan ph = plan_cores(phone);
  CHECK(ph.cpus == std::vector<int>{7, 4, 5, 6, 0, 1, 2, 3});
  CHECK(ph.performance == 4);
  // Only efficiency cores (Raspberry Pi 3, Cortex-A53): all of them are the performance cores.
  CorePlan pi3 = plan_cores({{0, GHz, true}, {1, GHz, true}, {2, GHz, true}, {3, GHz, true}});
  CHECK(pi3.performance == 4);
  // Unknown designs and clocks below 3/4 of the fastest (a hybrid x86: P cores, then E cores).
  CorePlan hybrid = plan_cores({{0, 4700 * GHz / 1000, false}, {2, 4700 * GHz / 1000, false},
                                {4, 3400 * GHz / 1000, false}, {5, 3400 * GHz / 1000, false}});
  CHECK(hybrid.cpus == std::vector<int>{0, 2, 4, 5});
  CHECK(hybrid.performance == 2);
  // Clocks unknown everywhere (a VM, qemu-user): cpuinfo's order, every core a performance core.
  CorePlan vm = plan_cores({{1, 0, false}, {0, 0, false}});
  CHECK(vm.cpus == std::vector<int>{1, 0});
  CHECK(vm.performance == 2);
  CHECK(plan_cores({}).performance == 0);
}

TEST_CASE("a run pins the calling thread only while it lasts and gives its affinity back") {
  cpu_set_t before, during, after;
  REQUIRE(sched_getaffinity(0, sizeof before, &before) == 0);
  const int n = std::min(2, usable_cpu_count());
  ThreadPool pool(n);
  std::atomic<int> ran{0};
  auto body = [&](int ith, int nth) {
    if (ith == 0) sched_getaffinity(0, sizeof during, &during);
    ran.fetch_add(1);
    pool.barrier();
  };
  pool.run(body);
  CHECK(ran.load() == n);
  REQUIRE(sched_getaffinity(0, sizeof after, &after) == 0);
  CHECK(CPU_EQUAL(&before, &after));
  if (n > 1) CHECK(CPU_COUNT(&during) == 1);
}
