// The worker pool: where workers run (from the kernel's topology in sysfs, recorded trees
// below), and that the calling thread (worker 0) gets its own CPU affinity back after each run.
#include <doctest/doctest.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "runtime/thread_pool.h"
#include "tests/test_data.h"

using namespace lutra;

namespace {

// A sysfs CPU tree as (path under /sys/devices/system/cpu, text) pairs.
using SysfsTree = std::vector<std::pair<std::string, std::string>>;

// Writes the tree under `dir` and returns its root, for sysfs_cores.
std::string write_tree(const TempDir& dir, const SysfsTree& tree) {
  for (const auto& [path, text] : tree) {
    std::filesystem::path p = dir / path;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text << "\n";
  }
  return dir.path().string();
}

// One logical CPU of a made-up tree: its sibling list and, where nonzero, its speeds.
struct FakeCpu {
  std::string siblings;
  uint64_t capacity = 0;
  uint64_t max_khz = 0;
};

// CPU i of the tree is cpus[i]. `siblings_file` is core_cpus_list, or thread_siblings_list as
// kernels before core_cpus_list wrote.
SysfsTree fake_tree(const std::vector<FakeCpu>& cpus, const std::string& siblings_file = "core_cpus_list") {
  SysfsTree tree;
  for (size_t i = 0; i < cpus.size(); ++i) {
    const std::string dir = "cpu" + std::to_string(i);
    tree.push_back({dir + "/topology/" + siblings_file, cpus[i].siblings});
    if (cpus[i].capacity) tree.push_back({dir + "/cpu_capacity", std::to_string(cpus[i].capacity)});
    if (cpus[i].max_khz) tree.push_back({dir + "/cpufreq/cpuinfo_max_freq", std::to_string(cpus[i].max_khz)});
  }
  return tree;
}

std::vector<int> cpu_range(int first, int last) {
  std::vector<int> cpus;
  for (int c = first; c <= last; ++c) cpus.push_back(c);
  return cpus;
}

}  // namespace

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

TEST_CASE("core plan from sysfs: a 2-core VM without SMT gets 2 workers") {
  // Recorded from the 2-CPU AMD EPYC VM lutra is developed on (kernel 6.18), whose CPUID makes
  // cpuinfo see one core with two threads.
  TempDir dir;
  const std::string root = write_tree(dir, {
      {"cpu0/topology/core_cpus_list", "0"}, {"cpu0/topology/thread_siblings_list", "0"},
      {"cpu0/topology/core_id", "0"}, {"cpu0/topology/physical_package_id", "0"},
      {"cpu0/topology/cluster_id", "65535"}, {"cpu0/cpu_capacity", "1024"},
      {"cpu1/topology/core_cpus_list", "1"}, {"cpu1/topology/thread_siblings_list", "1"},
      {"cpu1/topology/core_id", "1"}, {"cpu1/topology/physical_package_id", "0"},
      {"cpu1/topology/cluster_id", "65535"}, {"cpu1/cpu_capacity", "1024"},
  });
  CorePlan vm = plan_cores(sysfs_cores({0, 1}, root));
  CHECK(vm.cpus == std::vector<int>{0, 1});
  CHECK(vm.performance == 2);
}

TEST_CASE("core plan from sysfs: an 8-core 16-thread SMT desktop gets one worker per core, on its first allowed thread") {
  // Siblings 0,8 1,9 ... 7,15, in thread_siblings_list only (a kernel without core_cpus_list).
  std::vector<FakeCpu> cpus;
  for (int c = 0; c < 16; ++c) cpus.push_back({std::to_string(c % 8) + "," + std::to_string(c % 8 + 8), 0, 4700000});
  TempDir dir;
  const std::string root = write_tree(dir, fake_tree(cpus, "thread_siblings_list"));
  CorePlan desktop = plan_cores(sysfs_cores(cpu_range(0, 15), root));
  CHECK(desktop.cpus == cpu_range(0, 7));
  CHECK(desktop.performance == 8);
  // Allowed only the second threads (taskset -c 8-15): the same 8 cores, through those threads.
  CorePlan upper = plan_cores(sysfs_cores(cpu_range(8, 15), root));
  CHECK(upper.cpus == cpu_range(8, 15));
  CHECK(upper.performance == 8);
  // Allowed CPUs 0, 8 and 3: two cores.
  CHECK(plan_cores(sysfs_cores({0, 3, 8}, root)).cpus == std::vector<int>{0, 3});
}

TEST_CASE("core plan from sysfs: a Raspberry Pi 5 (4 equal Cortex-A76, capacity 1024) gets 4 workers") {
  std::vector<FakeCpu> cpus;
  for (int c = 0; c < 4; ++c) cpus.push_back({std::to_string(c), 1024, 2400000});
  TempDir dir;
  CorePlan pi5 = plan_cores(sysfs_cores(cpu_range(0, 3), write_tree(dir, fake_tree(cpus))));
  CHECK(pi5.cpus == std::vector<int>{0, 1, 2, 3});
  CHECK(pi5.performance == 4);
}

TEST_CASE("core plan from sysfs: a 1+3+4 phone gets 4 workers, prime core first, LITTLE cores last") {
  // CPUs 0-3 LITTLE (capacity 300, 2.0 GHz), 4-6 big (900, 2.8 GHz), 7 prime (1024, 3.2 GHz).
  std::vector<FakeCpu> cpus;
  for (int c = 0; c < 4; ++c) cpus.push_back({std::to_string(c), 300, 2000000});
  for (int c = 4; c < 7; ++c) cpus.push_back({std::to_string(c), 900, 2800000});
  cpus.push_back({"7", 1024, 3200000});
  TempDir dir;
  CorePlan phone = plan_cores(sysfs_cores(cpu_range(0, 7), write_tree(dir, fake_tree(cpus))));
  CHECK(phone.cpus == std::vector<int>{7, 4, 5, 6, 0, 1, 2, 3});
  CHECK(phone.performance == 4);
}

TEST_CASE("core plan from sysfs: cpu_capacity outranks the max clock where the kernel gives both") {
  // Mid cores at 80% of the prime cores' clock but a narrower design, half their capacity: by
  // capacity they are LITTLE, though by clock they would not be.
  TempDir dir;
  const std::string root = write_tree(dir, fake_tree({{"0", 1024, 2800000}, {"1", 1024, 2800000},
                                                      {"2", 512, 2250000}, {"3", 512, 2250000}}));
  CorePlan soc = plan_cores(sysfs_cores(cpu_range(0, 3), root));
  CHECK(soc.cpus == std::vector<int>{0, 1, 2, 3});
  CHECK(soc.performance == 2);
}

TEST_CASE("core plan from sysfs: a hybrid Intel laptop gets workers on its P-cores, told apart by max clock where capacity is 1024 everywhere") {
  // 4 P-cores with SMT (CPUs 0-7, siblings 0-1, 2-3, ...) at 4.7 GHz, 8 E-cores (8-15) at 3.4 GHz.
  std::vector<FakeCpu> cpus;
  for (int c = 0; c < 8; ++c) cpus.push_back({std::to_string(c & ~1) + "-" + std::to_string(c | 1), 1024, 4700000});
  for (int c = 8; c < 16; ++c) cpus.push_back({std::to_string(c), 1024, 3400000});
  TempDir dir;
  CorePlan laptop = plan_cores(sysfs_cores(cpu_range(0, 15), write_tree(dir, fake_tree(cpus))));
  std::vector<int> expected = {0, 2, 4, 6};
  for (int c = 8; c < 16; ++c) expected.push_back(c);
  CHECK(laptop.cpus == expected);
  CHECK(laptop.performance == 4);
}

TEST_CASE("core plan from sysfs: a CPU list like 0-3,8,10-11 puts every CPU it names in one core") {
  std::vector<FakeCpu> cpus(12);
  for (int c = 0; c < 12; ++c) cpus[size_t(c)].siblings = std::to_string(c);
  for (int c : {0, 1, 2, 3, 8, 10, 11}) cpus[size_t(c)].siblings = "0-3,8,10-11";
  TempDir dir;
  CHECK(sysfs_cores(cpu_range(0, 11), write_tree(dir, fake_tree(cpus))).size() == 6);  // 0, 4-7, 9
}

TEST_CASE("core plan from sysfs: a missing or malformed topology gives no cores, so cpuinfo's view is kept") {
  TempDir dir;
  CHECK(sysfs_cores({0, 1}, (dir / "no-such-folder").string()).empty());
  for (const char* bad : {"", "x", "0-", "-1", "1-0", "0,,1", "0-4000000000", "1"}) {  // "1": leaves out CPU 0
    TempDir tree;
    CHECK_MESSAGE(sysfs_cores({0, 1}, write_tree(tree, fake_tree({{bad}, {"1"}}))).empty(), bad);
  }
  // One CPU of two without a sibling list: the tree is not trusted at all.
  TempDir half;
  CHECK(sysfs_cores({0, 1}, write_tree(half, fake_tree({{"0"}}))).empty());
  // A malformed speed is only unknown: the cores stay, without speeds.
  TempDir speed;
  std::vector<CoreInfo> cores = sysfs_cores({0, 1}, write_tree(speed, {{"cpu0/topology/core_cpus_list", "0"},
                                                                      {"cpu0/cpu_capacity", "fast"},
                                                                      {"cpu1/topology/core_cpus_list", "1"},
                                                                      {"cpu1/cpu_capacity", "512"}}));
  REQUIRE(cores.size() == 2);
  CHECK(cores[0].speed == 0);
  CHECK(cores[1].speed == 0);
}

TEST_CASE("core plan: this machine's plan has one core for each that its sysfs lists") {
  cpu_set_t set;
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  std::vector<int> allowed;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) allowed.push_back(c);
  const std::vector<CoreInfo> kernel = sysfs_cores(allowed);
  if (kernel.empty()) {
    MESSAGE("skipped: no readable /sys/devices/system/cpu topology");
    return;
  }
  CHECK(core_plan().cpus.size() == kernel.size());
  CHECK(default_thread_count() <= int(kernel.size()));
}
