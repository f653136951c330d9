#include "runtime/thread_pool.h"

#include <cpuinfo.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>

namespace lutra {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Spin this many polls before sleeping on a futex: long enough to cover the gap between
// ops, short enough that a worker the OS has descheduled (another process on the core) or an
// idle chat session does not leave the others burning cycles.
constexpr int kSpinPolls = 1 << 14;

// Waits until `a` no longer holds `old`: spins, then sleeps in the kernel.
template <class T>
void wait_while_equal(const std::atomic<T>& a, T old) {
  for (int polls = 0; a.load(std::memory_order_acquire) == old; ++polls) {
    if (polls < kSpinPolls) {
      cpu_relax();
    } else {
      a.wait(old, std::memory_order_acquire);
      polls = 0;
    }
  }
}

// CPUs this process may use, in order.
std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

void pin_to(std::thread::native_handle_type h, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(h, sizeof set, &set);  // best effort: a refusal only costs speed
}

// The in-order ARM efficiency designs Debian 12's cpuinfo names. Newer ones it cannot name
// (Cortex-A510, A520) are told apart by their clock in plan_cores.
bool is_efficiency_uarch(cpuinfo_uarch u) {
  switch (u) {
    case cpuinfo_uarch_cortex_a7: case cpuinfo_uarch_cortex_a32: case cpuinfo_uarch_cortex_a35:
    case cpuinfo_uarch_cortex_a53: case cpuinfo_uarch_cortex_a55r0: case cpuinfo_uarch_cortex_a55:
      return true;
    default:
      return false;
  }
}

// One CPU per physical core among those this process may use (the first of its logical
// CPUs: SMT siblings share the core's vector units, so a second worker there only waits),
// placed by plan_cores. Empty if cpuinfo knows nothing.
CorePlan core_plan() {
  std::vector<int> allowed = allowed_cpus();
  std::vector<CoreInfo> cores;
  if (!cpuinfo_initialize()) return {};
  for (uint32_t i = 0; i < cpuinfo_get_cores_count(); ++i) {
    const cpuinfo_core* core = cpuinfo_get_core(i);
    for (uint32_t p = core->processor_start; p < core->processor_start + core->processor_count; ++p) {
      const int cpu = cpuinfo_get_processor(p)->linux_id;
      if (std::find(allowed.begin(), allowed.end(), cpu) != allowed.end()) {
        // A core's clock is its cluster's where cpuinfo read only the cluster's.
        const uint64_t hz = core->frequency ? core->frequency
                            : core->cluster ? core->cluster->frequency : 0;
        cores.push_back({cpu, hz, is_efficiency_uarch(core->uarch)});
        break;
      }
    }
  }
  return plan_cores(cores);
}

void pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);  // best effort, as pin_to
}

}  // namespace

CorePlan plan_cores(const std::vector<CoreInfo>& cores) {
  uint64_t max_hz = 0;
  bool any_performance_design = false;
  for (const CoreInfo& c : cores) {
    max_hz = std::max(max_hz, c.hz);
    any_performance_design |= !c.efficiency;
  }
  const auto little = [&](const CoreInfo& c) {
    return (c.efficiency && any_performance_design) || (c.hz > 0 && c.hz * 4 < max_hz * 3);
  };
  std::vector<CoreInfo> order = cores;
  std::stable_sort(order.begin(), order.end(), [&](const CoreInfo& a, const CoreInfo& b) {
    if (little(a) != little(b)) return !little(a);
    return a.hz > b.hz;
  });
  CorePlan plan;
  for (const CoreInfo& c : order) {
    plan.cpus.push_back(c.cpu);
    plan.performance += little(c) ? 0 : 1;
  }
  return plan;
}

int usable_cpu_count() {
  size_t n = allowed_cpus().size();
  return n > 0 ? int(n) : std::max(1, int(std::thread::hardware_concurrency()));
}

int default_thread_count() {
  const size_t cores = core_plan().performance;
  return cores > 0 ? int(cores) : usable_cpu_count();
}

std::vector<int> worker_cpus(int n_threads) {
  std::vector<int> cpus = core_plan().cpus;
  // More workers than cores (the user asked for it): every allowed CPU, SMT siblings included.
  if (int(cpus.size()) < n_threads) cpus = allowed_cpus();
  if (int(cpus.size()) < n_threads) return {};
  cpus.resize(size_t(n_threads));
  return cpus;
}

ThreadPool::ThreadPool(int n_threads) : n_(std::max(1, n_threads)) {
  cpus_ = worker_cpus(n_);
  threads_.reserve(size_t(n_ - 1));
  // Each worker starts from the generation as it is now: read inside the thread, a run()
  // issued before the thread first ran would look already seen, and its barrier would hang.
  const uint32_t start = generation_.load(std::memory_order_acquire);
  for (int i = 1; i < n_; ++i) {
    threads_.emplace_back([this, i, start] { worker_main(i, start); });
    if (!cpus_.empty()) pin_to(threads_.back().native_handle(), cpus_[size_t(i)]);
  }
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ThreadPool::run_raw(Fn fn, void* ctx) {
  if (n_ == 1) {
    fn(ctx, 0, 1);
    return;
  }
  // The caller is worker 0: pinned to its core for the run (else the scheduler may put it on a
  // core a pinned worker already holds, and every barrier waits for the two to take turns),
  // then given back the affinity it came with: the pool does not own the caller's thread.
  cpu_set_t saved;
  const bool pin = !cpus_.empty() && sched_getaffinity(0, sizeof saved, &saved) == 0;
  if (pin) pin_self(cpus_[0]);
  fn_ = fn;
  ctx_ = ctx;
  done_.store(0, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  fn(ctx, 0, n_);
  for (int done; (done = done_.load(std::memory_order_acquire)) != n_ - 1;) wait_while_equal(done_, done);
  if (pin) sched_setaffinity(0, sizeof saved, &saved);
}

void ThreadPool::worker_main(int ith, uint32_t seen) {
  for (;;) {
    wait_while_equal(generation_, seen);
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    fn_(ctx_, ith, n_);
    done_.fetch_add(1, std::memory_order_acq_rel);
    done_.notify_one();
  }
}

void ThreadPool::barrier() {
  if (n_ == 1) return;
  uint32_t phase = barrier_phase_.load(std::memory_order_acquire);
  if (barrier_count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
    barrier_count_.store(0, std::memory_order_relaxed);
    barrier_phase_.fetch_add(1, std::memory_order_acq_rel);
    barrier_phase_.notify_all();
    return;
  }
  wait_while_equal(barrier_phase_, phase);
}

void ThreadPool::split(size_t n, int ith, int nth, size_t align, size_t& begin, size_t& end) {
  size_t chunks = (n + align - 1) / align;
  size_t per = (chunks + size_t(nth) - 1) / size_t(nth);
  begin = std::min(n, size_t(ith) * per * align);
  end = std::min(n, begin + per * align);
}

}  // namespace lutra
