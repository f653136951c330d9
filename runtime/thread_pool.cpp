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

}  // namespace

int usable_cpu_count() {
  size_t n = allowed_cpus().size();
  return n > 0 ? int(n) : std::max(1, int(std::thread::hardware_concurrency()));
}

int default_thread_count() {
  int allowed = int(allowed_cpus().size());
  int cores = 0;
  if (cpuinfo_initialize()) cores = int(cpuinfo_get_cores_count());
  if (cores <= 0) cores = int(std::thread::hardware_concurrency());
  return std::max(1, std::min(cores, allowed > 0 ? allowed : cores));
}

ThreadPool::ThreadPool(int n_threads) : n_(std::max(1, n_threads)) {
  std::vector<int> cpus = allowed_cpus();
  threads_.reserve(size_t(n_ - 1));
  // Each worker starts from the generation as it is now: read inside the thread, a run()
  // issued before the thread first ran would look already seen, and its barrier would hang.
  const uint32_t start = generation_.load(std::memory_order_acquire);
  for (int i = 1; i < n_; ++i) {
    threads_.emplace_back([this, i, start] { worker_main(i, start); });
    if (int(cpus.size()) >= n_) pin_to(threads_.back().native_handle(), cpus[size_t(i)]);
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
  fn_ = fn;
  ctx_ = ctx;
  done_.store(0, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  fn(ctx, 0, n_);
  for (int done; (done = done_.load(std::memory_order_acquire)) != n_ - 1;) wait_while_equal(done_, done);
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
