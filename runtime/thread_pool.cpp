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

// One CPU per physical core among those this process may use (the first of its logical
// CPUs: SMT siblings share the core's vector units, so a second worker there only waits),
// fastest cores first (the big cores of a big.LITTLE board; cpuinfo reports each core's clock,
// 0 where unknown, and the order is otherwise cpuinfo's). Empty if cpuinfo knows nothing.
std::vector<int> core_cpus() {
  std::vector<int> allowed = allowed_cpus();
  struct Core {
    uint64_t hz;
    int cpu;
  };
  std::vector<Core> cores;
  if (!cpuinfo_initialize()) return {};
  for (uint32_t i = 0; i < cpuinfo_get_cores_count(); ++i) {
    const cpuinfo_core* core = cpuinfo_get_core(i);
    for (uint32_t p = core->processor_start; p < core->processor_start + core->processor_count; ++p) {
      const int cpu = cpuinfo_get_processor(p)->linux_id;
      if (std::find(allowed.begin(), allowed.end(), cpu) != allowed.end()) {
        cores.push_back({core->frequency, cpu});
        break;
      }
    }
  }
  std::stable_sort(cores.begin(), cores.end(), [](const Core& a, const Core& b) { return a.hz > b.hz; });
  std::vector<int> cpus;
  for (const Core& c : cores) cpus.push_back(c.cpu);
  return cpus;
}

void pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);  // best effort, as pin_to
}

}  // namespace

int usable_cpu_count() {
  size_t n = allowed_cpus().size();
  return n > 0 ? int(n) : std::max(1, int(std::thread::hardware_concurrency()));
}

int default_thread_count() {
  const size_t cores = core_cpus().size();
  return cores > 0 ? int(cores) : usable_cpu_count();
}

std::vector<int> worker_cpus(int n_threads) {
  std::vector<int> cpus = core_cpus();
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
