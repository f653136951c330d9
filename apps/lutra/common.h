// Pieces shared by the subcommands of the `lutra` CLI.
#pragma once

#include <atomic>
#include <cxxopts.hpp>
#include <memory>
#include <string>

#include "runtime/context.h"
#include "runtime/generate.h"
#include "runtime/model.h"
#include "runtime/sampler.h"

namespace lutra::cli {

// Set by SIGINT (Ctrl-C); the generation loop polls it.
extern std::atomic<bool> g_interrupted;
// Installs the SIGINT handler without SA_RESTART, so a blocked read returns on Ctrl-C.
void install_interrupt_handler();

// Prints "lutra: <message>" on stderr and returns the exit code 1.
int fail(const std::string& message);

// Options every model-running subcommand takes (-m -t -c -b, sampling; add_model_options
// includes add_compute_options).
void add_model_options(cxxopts::Options& o);
// How the kernels run: --isa, --float-bq, --head-candidates, --fast-bp; applied to `p` (--isa is
// apply_isa_option's).
void add_compute_options(cxxopts::Options& o);
Status apply_compute_options(const cxxopts::ParseResult& r, ContextParams& p);
void add_sampling_options(cxxopts::Options& o);
Result<SamplerParams> sampler_params(const cxxopts::ParseResult& r);

// -m, else $LUTRA_MODEL, else the default model built with lutra (or installed with it).
Result<std::string> resolve_model_path(const cxxopts::ParseResult& r);
Result<std::unique_ptr<Model>> load_model(const cxxopts::ParseResult& r);
// logits_all: keep every token's logits (eval, perplexity); default_n_ctx: the context when
// -c is not given (0: the model's, at most 4096).
Result<std::unique_ptr<Context>> make_context(const Model& model, const cxxopts::ParseResult& r,
                                              bool logits_all = false, int default_n_ctx = 0);

// -p/--prompt and -f/--file, added to `o` and read back: the file's bytes win over -p.
void add_text_options(cxxopts::Options& o, const char* group);
Result<std::string> read_text_option(const cxxopts::ParseResult& r);

// Applies --isa (a cap on the kernels' instruction set) if given.
Status apply_isa_option(const cxxopts::ParseResult& r);

// Parses argv with the options; on a parse error prints one line and returns false.
bool parse(cxxopts::Options& o, int argc, char** argv, cxxopts::ParseResult& out, int& exit_code);

void print_stats(const GenerationStats& s);
// Writes text to stdout at once (streaming output).
void print_text(std::string_view text);

}  // namespace lutra::cli

int cmd_run(int argc, char** argv);
int cmd_chat(int argc, char** argv);
int cmd_convert(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_perplexity(int argc, char** argv);
