// Device: where a tensor's storage lives. Kernels are looked up by device (kernels/backend.h).
#pragma once

#include <cstdint>
#include <string>

#include "gradlens/export.h"

namespace gradlens {

enum class DeviceType : std::uint8_t { CPU, CUDA };

struct GRADLENS_API Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  // Spelled out, not "= default": .cu files include this header and compile as C++17.
  bool operator==(const Device& other) const { return type == other.type && index == other.index; }
  bool operator!=(const Device& other) const { return !(*this == other); }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  /// "cpu" or "cuda:0".
  std::string str() const;
  /// Parses "cpu", "cuda" or "cuda:N"; throws std::invalid_argument on anything else.
  static Device parse(const std::string& text);
};

inline constexpr Device kCPU{};
inline constexpr Device kCUDA{DeviceType::CUDA, 0};

}  // namespace gradlens
