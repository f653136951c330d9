// Reads float32 NumPy .npy files (version 1.0, C order), as `lutra eval` and the training
// script write them: the shape and the data, with every header field checked.
#pragma once

#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/test_data.h"

// A float32 .npy file's shape (rows, cols) and data, parsed the way NumPy reads version 1.0.
struct Npy {
  size_t rows = 0, cols = 0;
  std::vector<float> data;
};
inline Npy read_npy_f32(const std::filesystem::path& p) {
  const std::vector<uint8_t> raw = read_bytes(p.string());
  const std::string b(raw.begin(), raw.end());
  REQUIRE(b.size() >= 10);
  REQUIRE(b.compare(0, 8, std::string("\x93NUMPY\x01\0", 8)) == 0);
  const size_t header = size_t(uint8_t(b[8])) | size_t(uint8_t(b[9])) << 8;
  REQUIRE((10 + header) % 16 == 0);  // NumPy pads to 64 (16 before 1.14)
  const std::string dict = b.substr(10, header);
  CHECK(dict.find("'descr': '<f4'") != std::string::npos);
  CHECK(dict.find("'fortran_order': False") != std::string::npos);
  Npy n;
  REQUIRE(std::sscanf(dict.c_str() + dict.find("'shape': (") + 10, "%zu, %zu", &n.rows, &n.cols) == 2);
  REQUIRE(b.size() == 10 + header + n.rows * n.cols * 4);
  n.data.resize(n.rows * n.cols);
  std::memcpy(n.data.data(), b.data() + 10 + header, b.size() - 10 - header);
  return n;
}
