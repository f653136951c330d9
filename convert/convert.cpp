#include "convert/convert.h"

#include <cstring>
#include <filesystem>
#include <fstream>

namespace lutra {

Status convert_model(const std::string& input, const std::string& output, const ConvertOptions& opts) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(input, ec)) return Status::error("'" + input + "' does not exist");
  if (fs::is_directory(input, ec)) {
    if (fs::exists(fs::path(input) / "config.json", ec))
      return Status::error("'" + input + "' is a Hugging Face folder: converting those is not supported yet");
    return Status::error("'" + input + "' is a folder without config.json: not a checkpoint lutra knows");
  }
  char magic[4] = {};
  std::ifstream in(input, std::ios::binary);
  in.read(magic, 4);
  if (std::memcmp(magic, "GGUF", 4) == 0) return convert_gguf(input, output, opts);
  if (std::memcmp(magic, "LUTR", 4) == 0)
    return Status::error("'" + input + "' is already a lutra model");
  // Anything else must parse as a llama2.c checkpoint (which has no magic in its legacy form).
  return convert_llama2c(input, output, opts);
}

}  // namespace lutra
