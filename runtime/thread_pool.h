// One worker per core, pinned, running the same function (ith, nth) and meeting at barriers
// between dependent ops (design.md §4). The calling thread is worker 0. Nothing here
// allocates once the pool is built; idle workers spin briefly, then sleep.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace lutra {

// The default worker count: the performance cores this process may run on (one worker each;
// every physical core where all cores are alike). See plan_cores.
int default_thread_count();
// Logical CPUs this process may run on: more workers than this only wait for each other.
int usable_cpu_count();
// The CPU each of n workers is pinned to: one per physical core, performance cores first, then
// SMT siblings if n exceeds the cores; empty if n exceeds the usable CPUs (workers not pinned).
std::vector<int> worker_cpus(int n_threads);

// One physical core as worker placement sees it (from Linux sysfs, else from cpuinfo).
struct CoreInfo {
  int cpu;          // Linux id of its first logical CPU this process may use
  uint64_t speed;   // its maximum clock or the kernel's capacity (one unit for all cores), 0 where unknown
  bool efficiency;  // an in-order efficiency design (Cortex-A53, A55, A510, ...)
};
// Where workers go on a big.LITTLE (or prime + big + LITTLE) CPU. Workers split every matrix
// into equal row ranges and meet at a barrier after it, so one worker on a slow core holds up
// all the others: by default only the performance cores get workers. A core is LITTLE when it
// is an efficiency design beside cores that are not, or when its speed is known and below 3/4
// of the fastest core's. `cpus` lists performance cores by speed (fastest first, otherwise in
// the given order), then the LITTLE ones the same way; the first `performance` are the default.
struct CorePlan {
  std::vector<int> cpus;
  size_t performance = 0;
};
CorePlan plan_cores(const std::vector<CoreInfo>& cores);

// The physical cores of this machine that this process may use, planned by plan_cores: the
// kernel's topology (sysfs_cores) where it is readable, else cpuinfo's cores and clusters.
CorePlan core_plan();

// The physical cores the kernel lists under `root` among the logical CPUs in `allowed`: one per
// set of SMT siblings (core_cpus_list, or thread_siblings_list on older kernels), for its
// first allowed CPU, in CPU order. Its speed is cpu_capacity where that tells cores apart (ARM;
// x86 kernels may write 1024 everywhere), else cpufreq/cpuinfo_max_freq. `efficiency` is left
// false: sysfs does not name designs. Empty if a sibling list is missing or malformed.
std::vector<CoreInfo> sysfs_cores(const std::vector<int>& allowed,
                                  const std::string& root = "/sys/devices/system/cpu");

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_; }

  // Runs f(ith, nth) on every worker and returns when all have finished.
  template <class F>
  void run(F& f) {
    run_raw([](void* ctx, int ith, int nth) { (*static_cast<F*>(ctx))(ith, nth); }, &f);
  }
  // Inside run(): waits until every worker has reached this barrier.
  void barrier();

  // Rows [begin, end) of n for worker ith, split in chunks aligned to `align` rows.
  static void split(size_t n, int ith, int nth, size_t align, size_t& begin, size_t& end);

 private:
  using Fn = void (*)(void*, int, int);
  void run_raw(Fn fn, void* ctx);
  void worker_main(int ith, uint32_t seen);

  int n_;
  std::vector<int> cpus_;  // worker_cpus(n_): worker i's CPU
  std::vector<std::thread> threads_;
  Fn fn_ = nullptr;
  void* ctx_ = nullptr;
  // Each on its own cache line: workers poll them.
  alignas(64) std::atomic<uint32_t> generation_{0};
  alignas(64) std::atomic<int> done_{0};
  alignas(64) std::atomic<int> barrier_count_{0};
  alignas(64) std::atomic<uint32_t> barrier_phase_{0};
  alignas(64) std::atomic<bool> stop_{false};
};

}  // namespace lutra
