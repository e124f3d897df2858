// The safetensors reader on arbitrary bytes: every input is either a file it reads back, tensor by
// tensor, or one std::runtime_error; never a crash, a hang or a sanitizer report.
#include <stdexcept>

#include "fuzz/fuzz_input.h"
#include "gradlens/nn/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = gradlens::fuzz::input_file(data, size, "model.safetensors");
  try {
    const gradlens::nn::SafetensorsFile file = gradlens::nn::SafetensorsFile::load(path);
    for (const std::string& name : file.names()) {
      const std::string& dtype = file.dtype(name);
      try {
        if (dtype == "I64" || dtype == "I32" || dtype == "U8") {
          file.int64s(name);
        } else if (dtype == "F64") {
          file.float64s(name);
        } else {
          file.tensor(name);
        }
      } catch (const std::runtime_error&) {
      }
    }
    file.float_tensors();
  } catch (const std::runtime_error&) {
  }
  return 0;
}
