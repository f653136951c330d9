// Locating the shared test data (real files made by other tools; never in the repository).
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

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
