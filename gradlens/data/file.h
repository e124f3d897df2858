// The one way gradlens writes a file (models, attribution shards, reports, fetched data): nothing
// half-written is ever seen under the file's name, and nothing already there is lost on failure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "gradlens/export.h"

namespace gradlens::data {

/// Appends bytes to the file being written.
using ByteSink = std::function<void(const void* data, std::size_t size)>;

/// Writes `path` through a temporary beside it with an unguessable name, created with O_EXCL and
/// O_NOFOLLOW (a link planted there is never followed), filled by `fill`, fsynced, renamed onto
/// `path`, then the folder fsynced. A `path` that exists but is not a regular file (a folder, a
/// device, a FIFO) is refused; temporaries of `path` left by a killed writer (their process is
/// gone) are removed first. Errors are std::runtime_error "[tag] path: what failed: errno text";
/// the temporary is removed and `path` left as it was.
GRADLENS_API void write_file_atomic(const std::string& path,
                                    const std::function<void(const ByteSink& write)>& fill,
                                    std::string_view tag = "write");
GRADLENS_API void write_file_atomic(const std::string& path, std::span<const std::uint8_t> bytes);
GRADLENS_API void write_file_atomic(const std::string& path, std::string_view text);

/// The whole of a regular file, opened without waiting on a FIFO or a device (refused, as is a
/// file over `max_bytes`). Errors are std::runtime_error "[tag] path: what failed: errno text".
GRADLENS_API std::string read_regular_file(const std::string& path,
                                           std::size_t max_bytes,
                                           std::string_view tag = "read");

}  // namespace gradlens::data
