// The npm package's sprite rows -> official records conversion on arbitrary rows and labels (the
// first bytes choose how many labels, the rest are the rows): records of the right size, or one
// std::invalid_argument.
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "gradlens/data/fetch.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t count = data[0] % 8;
  std::vector<std::int64_t> labels;
  for (std::size_t i = 0; i < count && 1 + i < size; ++i)
    labels.push_back(static_cast<std::int8_t>(data[1 + i]));
  const std::size_t skip = 1 + count < size ? 1 + count : size;
  const std::span<const std::uint8_t> rows(data + skip, size - skip);
  try {
    const std::vector<std::uint8_t> records =
        gradlens::data::tfjs_rows_to_cifar_records(rows, labels);
    if (records.size() != labels.size() * 3073) __builtin_trap();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
