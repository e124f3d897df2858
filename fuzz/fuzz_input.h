// Shared by the fuzz targets: the readers under test take paths, so each input is written to a file
// of this process first (in /dev/shm when there is one: no disk, no fsync).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace gradlens::fuzz {

inline std::string input_file(const std::uint8_t* data, std::size_t size, const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
  const std::string path =
      (dir / ("gradlens_fuzz_" + std::to_string(::getpid()) + "_" + name)).string();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) __builtin_trap();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
  return path;
}

}  // namespace gradlens::fuzz
