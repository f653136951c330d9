// Picks one variant of each kernel kind from the CPU's features (read once through cpuinfo)
// and the ISA cap (LUTRA_ISA or set_isa_cap), so one binary runs, and tests, every ISA path.
#include <cpuinfo.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <cstdio>
#include <cstdlib>
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#include "runtime/kernels.h"

namespace lutra {
namespace {

struct Features {
  bool avx2 = false, avx512 = false, neon = false, neondot = false, neoni8mm = false;
  bool avxvnni = false;                         // on top of avx2
  bool avx512vnni = false, avx512vbmi = false;  // each on top of avx512
};

const Features& features() {
  static const Features f = [] {
    Features r;
    if (!cpuinfo_initialize()) return r;  // unknown CPU: scalar only
#if defined(__x86_64__) || defined(__i386__)
    r.avx2 = cpuinfo_has_x86_avx2() && cpuinfo_has_x86_fma3() && cpuinfo_has_x86_f16c();
    r.avx512 = r.avx2 && cpuinfo_has_x86_avx512f() && cpuinfo_has_x86_avx512bw() &&
               cpuinfo_has_x86_avx512vl() && cpuinfo_has_x86_avx512dq();
    // Debian 12's cpuinfo has no AVX-VNNI query: CPUID leaf 7, sub-leaf 1, EAX bit 4. (Its ymm
    // state is the OS support avx2 already needs.)
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    r.avxvnni = r.avx2 && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 4));
    r.avx512vnni = r.avx512 && cpuinfo_has_x86_avx512vnni();
    r.avx512vbmi = r.avx512 && cpuinfo_has_x86_avx512vbmi();
#elif defined(__aarch64__) || defined(__arm__)
    r.neon = cpuinfo_has_arm_neon();
    r.neondot = r.neon && cpuinfo_has_arm_neon_dot();
#if defined(__aarch64__) && defined(__linux__)
    // Debian 12's cpuinfo has no i8mm query; the kernel reports it in the second hwcap word.
    constexpr unsigned long kHwcap2I8mm = 1ul << 13;  // HWCAP2_I8MM in <asm/hwcap.h>
    r.neoni8mm = r.neondot && (getauxval(AT_HWCAP2) & kHwcap2I8mm);
#endif
#endif
    return r;
  }();
  return f;
}

// Position of an ISA within its architecture's chain (scalar < avx2 < avxvnni < avx512 <
// avx512vnni < avx512vbmi, scalar < neon < neondot < neoni8mm). The x86 chain is only an order for the cap: each
// variant still needs cpu_supports(its own ISA).
int rank(Isa isa) {
  switch (isa) {
    case Isa::scalar: return 0;
    case Isa::avx2: case Isa::neon: return 1;
    case Isa::neondot: return 2;
    case Isa::neoni8mm: return 3;
    case Isa::avxvnni: return 2;
    case Isa::avx512: return 3;
    case Isa::avx512vnni: return 4;
    case Isa::avx512vbmi: return 5;
  }
  return 0;
}
bool is_arm(Isa isa) { return isa == Isa::neon || isa == Isa::neondot || isa == Isa::neoni8mm; }

// The strongest ISA of this build's architecture: the cap when none is asked for.
constexpr Isa native_top() {
#if defined(__aarch64__)
  return Isa::neoni8mm;
#elif defined(__x86_64__)
  return Isa::avx512vbmi;
#else
  return Isa::scalar;
#endif
}

bool allowed(Isa isa, Isa cap) {
  if (isa == Isa::scalar) return true;
  // A cap naming the other architecture's ISA allows nothing beyond scalar here.
  return cpu_supports(isa) && is_arm(isa) == is_arm(cap) && rank(isa) <= rank(cap);
}

template <class Fn>
Variant<Fn> pick(std::span<const Variant<Fn>> variants, Isa cap) {
  Variant<Fn> chosen = variants.front();  // the scalar reference
  for (const Variant<Fn>& v : variants)
    if (allowed(v.isa, cap)) chosen = v;
  return chosen;
}

KernelTable build(Isa cap) {
  const KernelInventory& inv = kernel_inventory();
  return KernelTable{
      .gemm_f32 = pick(inv.gemm_f32, cap),
      .gemm_f16 = pick(inv.gemm_f16, cap),
      .gemm_bq = pick(inv.gemm_bq, cap),
      .gemm_t2 = pick(inv.gemm_t2, cap),
      .gemm_bq_i8 = pick(inv.gemm_bq_i8, cap),
      .lut_build_t3 = pick(inv.lut_build_t3, cap),
      .gemm_t3 = pick(inv.gemm_t3, cap),
      .gemm_t3_madd = pick(inv.gemm_t3_madd, cap),
      .gemm_t3_madd_scaled = pick(inv.gemm_t3_madd_scaled, cap),
      .quantize_i8 = pick(inv.quantize_i8, cap),
      .rmsnorm = pick(inv.rmsnorm, cap),
      .softmax = pick(inv.softmax, cap),
      .rope = pick(inv.rope, cap),
      .attention = pick(inv.attention, cap),
      .attention_gqa = pick(inv.attention_gqa, cap),
      .silu_mul = pick(inv.silu_mul, cap),
      .relu2_mul = pick(inv.relu2_mul, cap),
      .dequant_row = pick(inv.dequant_row, cap),
      .lut_build_t5 = pick(inv.lut_build_t5, cap),
      .gemm_t5 = pick(inv.gemm_t5, cap),
      .lut_build_bp = pick(inv.lut_build_bp, cap),
      .lut_build_bp_fast = pick(inv.lut_build_bp_fast, cap),
      .gemm_bp = pick(inv.gemm_bp, cap),
      .gemm_bp_fast = pick(inv.gemm_bp_fast, cap),
  };
}

struct Dispatch {
  Isa cap = native_top();
  KernelTable table;
  Dispatch() {
    if (const char* env = std::getenv("LUTRA_ISA"); env && *env) {
      if (!parse_isa(env, cap)) {
        cap = native_top();
        std::fprintf(stderr, "lutra: ignoring unknown LUTRA_ISA=%s (expected one of: %s)\n", env,
                     isa_names().c_str());
      }
    }
    table = build(cap);
  }
};

Dispatch& state() {
  static Dispatch d;  // thread-safe first initialization
  return d;
}

}  // namespace

const char* to_string(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::neon: return "neon";
    case Isa::neondot: return "neondot";
    case Isa::avx512vnni: return "avx512vnni";
    case Isa::avx512vbmi: return "avx512vbmi";
    case Isa::avxvnni: return "avxvnni";
    case Isa::neoni8mm: return "neoni8mm";
  }
  return "?";
}

bool parse_isa(const std::string& s, Isa& out) {
  for (Isa isa : kAllIsas) {
    if (s == to_string(isa)) {
      out = isa;
      return true;
    }
  }
  return false;
}

// The hardware alone, not the cap: tests and benchmarks run every variant the CPU can.
bool cpu_supports(Isa isa) {
  const Features& f = features();
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return f.avx2;
    case Isa::avx512: return f.avx512;
    case Isa::neon: return f.neon;
    case Isa::neondot: return f.neondot;
    case Isa::avx512vnni: return f.avx512vnni;
    case Isa::avx512vbmi: return f.avx512vbmi;
    case Isa::avxvnni: return f.avxvnni;
    case Isa::neoni8mm: return f.neoni8mm;
  }
  return false;
}

std::string isa_names() {
  std::string s;
  for (Isa isa : kAllIsas) s += std::string(s.empty() ? "" : ", ") + to_string(isa);
  return s;
}

Isa isa_cap() { return state().cap; }

const KernelTable& kernels() { return state().table; }

void set_isa_cap(Isa cap) {
  Dispatch& d = state();
  d.cap = cap;
  d.table = build(cap);
}

}  // namespace lutra
