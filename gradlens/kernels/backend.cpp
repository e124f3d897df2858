// backend_for(): dispatch from a Device to its kernel table; Device parsing and printing.
#include "gradlens/kernels/backend.h"

#include <atomic>
#include <stdexcept>
#include <string>

#include "gradlens/kernels/precision.h"
#include "gradlens/kernels/registry.h"

namespace gradlens {

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

Device Device::parse(const std::string& text) {
  if (text == "cpu") return kCPU;
  if (text == "cuda" || text == "gpu") return kCUDA;
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5) {
    const std::string digits = text.substr(5);
    if (digits.find_first_not_of("0123456789") == std::string::npos && digits.size() < 4) {
      return Device{DeviceType::CUDA, std::stoi(digits)};
    }
  }
  throw std::invalid_argument("[device] unknown device '" + text +
                              "' (expected cpu, cuda or cuda:N)");
}

Backend& backend_for(Device device) {
  if (device.is_cpu()) return detail::cpu_backend();
  return detail::cuda_backend(device.index);
}

bool cuda_is_available() { return detail::cuda_device_present(); }

std::string cuda_unavailable_reason() {
  if (cuda_is_available()) return "";
  try {
    backend_for(kCUDA);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no CUDA device is visible";
}

namespace {
std::atomic<MatmulPrecision> current_precision{MatmulPrecision::Float32};
}  // namespace

void set_matmul_precision(MatmulPrecision precision) { current_precision = precision; }
MatmulPrecision matmul_precision() { return current_precision; }

MatmulPrecision parse_matmul_precision(std::string_view text) {
  if (text == "float32" || text == "fp32") return MatmulPrecision::Float32;
  if (text == "tf32") return MatmulPrecision::TF32;
  throw std::invalid_argument("[precision] unknown precision '" + std::string(text) +
                              "' (expected float32 or tf32)");
}

}  // namespace gradlens
