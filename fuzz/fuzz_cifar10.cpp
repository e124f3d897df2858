// The CIFAR-10 reader on arbitrary bytes, under an official name (exact size required) and under
// another one (any whole number of records): a split or one std::runtime_error, nothing else.
#include <stdexcept>

#include "fuzz/fuzz_input.h"
#include "gradlens/data/cifar10.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (const char* name : {"test_batch.bin", "mine.bin"}) {
    const std::string path = gradlens::fuzz::input_file(data, size, name);
    try {
      const gradlens::data::CifarSplit split = gradlens::data::load_cifar10_file(path);
      for (const std::int64_t label : split.labels) {
        if (label < 0 || label > 9) __builtin_trap();  // the reader promises labels 0..9
      }
    } catch (const std::runtime_error&) {
    }
  }
  return 0;
}
