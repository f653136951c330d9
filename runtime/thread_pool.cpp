#include "runtime/thread_pool.h"

#include <cpuinfo.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <iterator>
#include <optional>
#include <string_view>

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
// (Cortex-A510, A520) are told apart by their clock or capacity in plan_cores.
bool is_efficiency_uarch(cpuinfo_uarch u) {
  switch (u) {
    case cpuinfo_uarch_cortex_a7: case cpuinfo_uarch_cortex_a32: case cpuinfo_uarch_cortex_a35:
    case cpuinfo_uarch_cortex_a53: case cpuinfo_uarch_cortex_a55r0: case cpuinfo_uarch_cortex_a55:
      return true;
    default:
      return false;
  }
}

// One CPU per physical core among `allowed`, as cpuinfo groups them (the first of its logical
// CPUs: SMT siblings share the core's vector units, so a second worker there only waits). Used
// where sysfs is unreadable; inside some VMs CPUID claims SMT that the kernel does not see, so
// cpuinfo may count fewer cores than there are. Empty if cpuinfo knows nothing.
std::vector<CoreInfo> cpuinfo_cores(const std::vector<int>& allowed) {
  std::vector<CoreInfo> cores;
  if (!cpuinfo_initialize()) return cores;
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
  return cores;
}

// Marks the cores whose design cpuinfo names as an efficiency one, matched by Linux CPU id
// (sysfs gives clocks and capacities, not designs). A CPU cpuinfo does not list stays unmarked.
void mark_efficiency_designs(std::vector<CoreInfo>& cores) {
  if (!cpuinfo_initialize()) return;
  for (uint32_t p = 0; p < cpuinfo_get_processors_count(); ++p) {
    const cpuinfo_processor* proc = cpuinfo_get_processor(p);
    for (CoreInfo& c : cores)
      if (c.cpu == int(proc->linux_id) && proc->core) c.efficiency = is_efficiency_uarch(proc->core->uarch);
  }
}

// A sysfs file's text without its trailing newline; nullopt if it cannot be read.
std::optional<std::string> read_sysfs(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return std::nullopt;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

// A decimal number filling all of `s`; nullopt otherwise.
std::optional<uint64_t> parse_number(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// A kernel CPU list ("0-3,8,10-11"), or nullopt if it is malformed.
std::optional<std::vector<int>> parse_cpu_list(std::string_view s) {
  std::vector<int> cpus;
  while (!s.empty()) {
    const size_t comma = s.find(',');
    const std::string_view item = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    const size_t dash = item.find('-');
    const auto first = parse_number(item.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : parse_number(item.substr(dash + 1));
    // CPU_SETSIZE bounds the range: a corrupt "0-4000000000" must not become a huge list.
    if (!first || !last || *first > *last || *last >= CPU_SETSIZE) return std::nullopt;
    for (uint64_t c = *first; c <= *last; ++c) cpus.push_back(int(c));
  }
  if (cpus.empty()) return std::nullopt;
  return cpus;
}

void pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);  // best effort, as pin_to
}

}  // namespace

CorePlan plan_cores(const std::vector<CoreInfo>& cores) {
  uint64_t max_speed = 0;
  bool any_performance_design = false;
  for (const CoreInfo& c : cores) {
    max_speed = std::max(max_speed, c.speed);
    any_performance_design |= !c.efficiency;
  }
  const auto little = [&](const CoreInfo& c) {
    return (c.efficiency && any_performance_design) || (c.speed > 0 && c.speed * 4 < max_speed * 3);
  };
  std::vector<CoreInfo> order = cores;
  std::stable_sort(order.begin(), order.end(), [&](const CoreInfo& a, const CoreInfo& b) {
    if (little(a) != little(b)) return !little(a);
    return a.speed > b.speed;
  });
  CorePlan plan;
  for (const CoreInfo& c : order) {
    plan.cpus.push_back(c.cpu);
    plan.performance += little(c) ? 0 : 1;
  }
  return plan;
}

std::vector<CoreInfo> sysfs_cores(const std::vector<int>& allowed, const std::string& root) {
  std::vector<CoreInfo> cores;
  std::vector<bool> seen(CPU_SETSIZE, false);  // logical CPUs already in a listed core
  std::vector<uint64_t> capacity, freq;        // of each core's first CPU, 0 where unknown
  for (int cpu : allowed) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return {};
    if (seen[size_t(cpu)]) continue;  // an SMT sibling of a core already listed
    const std::string dir = root + "/cpu" + std::to_string(cpu);
    auto siblings = read_sysfs(dir + "/topology/core_cpus_list");
    if (!siblings) siblings = read_sysfs(dir + "/topology/thread_siblings_list");
    const auto list = siblings ? parse_cpu_list(*siblings) : std::nullopt;
    // A list that leaves out its own CPU is not a topology to trust.
    if (!list || std::find(list->begin(), list->end(), cpu) == list->end()) return {};
    for (int c : *list) seen[size_t(c)] = true;
    // Speeds are optional: a missing or malformed one is unknown (0).
    const auto number = [&](const char* file) {
      return parse_number(read_sysfs(dir + file).value_or("")).value_or(0);
    };
    capacity.push_back(number("/cpu_capacity"));
    freq.push_back(number("/cpufreq/cpuinfo_max_freq"));  // kHz
    cores.push_back({cpu, 0, false});
  }
  // Capacity (the kernel's speed estimate, clock times design) when every core has one and they
  // differ; where they are all equal they say nothing (x86 kernels may write 1024 everywhere),
  // and the clocks may still tell a hybrid x86's P and E cores apart.
  const auto [least, most] = std::minmax_element(capacity.begin(), capacity.end());
  const bool use_capacity = least != capacity.end() && *least > 0 && *least != *most;
  for (size_t i = 0; i < cores.size(); ++i) cores[i].speed = use_capacity ? capacity[i] : freq[i];
  return cores;
}

CorePlan core_plan() {
  const std::vector<int> allowed = allowed_cpus();
  // Where cpuinfo and the kernel disagree on the cores (CPUID inside a VM), trust the kernel.
  std::vector<CoreInfo> cores = sysfs_cores(allowed);
  if (cores.empty())
    cores = cpuinfo_cores(allowed);  // no /sys (some containers) or not Linux-like
  else
    mark_efficiency_designs(cores);
  return plan_cores(cores);
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
