// `lutra info`: the CPU, the kernel variant chosen for each kind, and a model's contents.
#include <cpuinfo.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "apps/lutra/common.h"

using namespace lutra;
using namespace lutra::cli;

namespace {

void print_kernels() {
  std::string cpu = "unknown CPU";
  if (cpuinfo_initialize() && cpuinfo_get_packages_count() > 0 && cpuinfo_get_package(0)->name[0])
    cpu = cpuinfo_get_package(0)->name;
  // The physical cores this process may use, as the workers are placed (the kernel's count where
  // it differs from cpuinfo's).
  const int cores = int(core_plan().cpus.size());
  std::printf("cpu:      %s, %d cores (%d workers by default)\n", cpu.c_str(), cores, default_thread_count());
  std::printf("isa:      ");
  for (Isa i : kAllIsas)
    if (i != Isa::scalar && cpu_supports(i)) std::printf("%s ", to_string(i));
  std::printf("(cap: %s)\nkernels:\n", to_string(isa_cap()));
  const KernelTable& k = kernels();
  auto row = [](const char* kind, const char* name) { std::printf("  %-17s %s\n", kind, name); };
  row("gemm_f32", k.gemm_f32.name);
  row("gemm_f16", k.gemm_f16.name);
  row("gemm_bq", k.gemm_bq.name);
  row("gemm_t2", k.gemm_t2.name);
  row("lut_build_t3", k.lut_build_t3.name);
  row("gemm_t3", k.gemm_t3.name);
  row("gemm_t3_madd", k.gemm_t3_madd.name);
  row("gemm_t3_madd_scaled", k.gemm_t3_madd_scaled.name);
  row("lut_build_t5", k.lut_build_t5.name);
  row("gemm_t5", k.gemm_t5.name);
  row("gemm_bq_i8", k.gemm_bq_i8.name);
  row("quantize_i8", k.quantize_i8.name);
  row("rmsnorm", k.rmsnorm.name);
  row("softmax", k.softmax.name);
  row("rope", k.rope.name);
  row("attention", k.attention.name);
  row("attention_gqa", k.attention_gqa.name);
  row("silu_mul", k.silu_mul.name);
  row("relu2_mul", k.relu2_mul.name);
  row("dequant_row", k.dequant_row.name);
  row("lut_build_bp", k.lut_build_bp.name);
  row("gemm_bp", k.gemm_bp.name);
  row("lut_build_bp_fast", k.lut_build_bp_fast.name);
  row("gemm_bp_fast", k.gemm_bp_fast.name);
}

void print_model(const Model& m) {
  const ModelConfig& c = m.config();
  std::printf("model:    %s (%.1f MB)\n", m.file().path().c_str(), double(m.file().size()) / 1e6);
  std::printf("arch:     %s: dim %d, hidden %d, %d layers, %d heads (%d KV, head dim %d), vocab %d, "
              "context %d\n", c.arch.c_str(), c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
              c.head_dim, c.vocab_size, c.max_seq_len);
  std::printf("          %s, %s RoPE (theta %g), norm eps %g, %s head, chat template %s\n",
              c.activation == Activation::silu ? "SiLU" : "relu²",
              c.rope_style == RopeStyle::interleaved ? "interleaved" : "half-split", double(c.rope_theta),
              double(c.norm_eps), c.tied_embeddings ? "tied" : "separate", c.chat_template.c_str());
  std::printf("source:   %s\n", m.provenance_json().c_str());
  // Parameters and bytes by format, over the weight matrices.
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_format;
  for (const TensorInfo& t : m.file().tensors()) {
    if (t.shape.size() != 2) continue;
    std::string f = t.format == "bq" || t.format == "bp" ? std::string(t.format == "bq" ? "b" : "p") + std::to_string(t.bits) + "g" + std::to_string(t.group) +
                                           (t.asymmetric ? "a" : "")
                                     : t.format;
    by_format[f].first += t.shape[0] * t.shape[1];
    by_format[f].second += t.bytes;
  }
  std::printf("tensors:  %zu\n", m.file().tensors().size());
  for (const auto& [f, pb] : by_format)
    std::printf("  %-8s %12llu weights %10.1f MB  %.2f bits/weight\n", f.c_str(),
                static_cast<unsigned long long>(pb.first), double(pb.second) / 1e6,
                8.0 * double(pb.second) / double(pb.first));
  std::printf("per token: %.1f MB of weights read\n", double(m.weight_bytes_per_token(kDefaultHeadCandidates)) / 1e6);
}

}  // namespace

int cmd_info(int argc, char** argv) {
  cxxopts::Options o("lutra info", "Show the CPU, the chosen kernels and a model");
  o.add_options()
      ("m,model", "model file (default: $LUTRA_MODEL, else the default model)", cxxopts::value<std::string>())
      ("verify", "check every tensor's checksum")
      ("isa", "cap the kernels' instruction set: " + isa_names(), cxxopts::value<std::string>())
      ("h,help", "show this help");
  cxxopts::ParseResult r;
  int code;
  if (!parse(o, argc, argv, r, code)) return code;
  if (Status s = apply_isa_option(r); !s.ok()) return fail(s.message());
  std::printf("lutra %s\n", LUTRA_VERSION);
  print_kernels();
  auto path = resolve_model_path(r);
  if (!path.ok()) {
    if (r.count("model") || r.count("verify")) return fail(path.message());
    return 0;
  }
  auto model = Model::load(*path);
  if (!model.ok()) return fail(model.message());
  print_model(**model);
  if (r.count("verify")) {
    Status s = (*model)->file().verify();
    if (!s.ok()) return fail(s.message());
    std::printf("verify:   all %zu tensor checksums match\n", (*model)->file().tensors().size());
  }
  return 0;
}
