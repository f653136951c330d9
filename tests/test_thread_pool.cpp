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
