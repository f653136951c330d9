// Test support: the shared test data (real files made by other tools; never in the
// repository), temporary folders, and whole-file reads and writes.
#pragma once

#include <doctest/doctest.h>

#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

// The folder named by LUTRA_TEST_DATA, else ../shared/data relative to the current directory.
inline std::filesystem::path test_data_dir() {
  const char* env = std::getenv("LUTRA_TEST_DATA");
  return (env && *env) ? std::filesystem::path(env) : std::filesystem::path("../shared/data");
}

// The file's path, or nullopt after a doctest MESSAGE naming the missing file: a user's
// machine has no test data, so tests that need it skip instead of failing. Use as
//   auto f = test_data_file("tok512.bin"); if (!f) return;
inline std::optional<std::filesystem::path> test_data_file(const char* name) {
  std::filesystem::path p = test_data_dir() / name;
  std::error_code ec;
  if (std::filesystem::is_regular_file(p, ec)) return p;
  MESSAGE("skipped: test data file '" << p.string() << "' not found (set LUTRA_TEST_DATA)");
  return std::nullopt;
}

// A fresh directory under the system's temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "lutra-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The Hugging Face folder a tar of the shared test data holds, extracted into `into`; nullopt
// (after test_data_file's message) if the tar is absent.
inline std::optional<std::filesystem::path> extract_test_tar(const char* tar_name, const TempDir& into) {
  auto tar = test_data_file(tar_name);
  if (!tar) return std::nullopt;
  const std::string cmd = "tar -xf '" + tar->string() + "' -C '" + into.path().string() + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const std::filesystem::path dir = into.path() / std::filesystem::path(tar_name).stem();
  REQUIRE(std::filesystem::exists(dir / "config.json"));
  return dir;
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}
