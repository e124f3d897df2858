#include "gradlens/data/file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>
#include <stdexcept>

namespace gradlens::data {

namespace {

// Temporaries of this file left by a writer that was killed: their process is gone. One whose
// process still runs (another writer of the same file) is left alone.
void remove_stale_temporaries(const std::filesystem::path& dir, const std::string& prefix) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const auto dash = rest.find('-');
    if (dash == std::string::npos || dash == 0 || rest.find_first_not_of("0123456789") != dash)
      continue;
    const long pid = std::strtol(rest.substr(0, dash).c_str(), nullptr, 10);
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      if (entry.is_regular_file(ignored) && !entry.is_symlink(ignored))
        std::filesystem::remove(entry.path(), ignored);
    }
  }
}

}  // namespace

void write_file_atomic(const std::string& path,
                       const std::function<void(const ByteSink& write)>& fill,
                       std::string_view tag) {
  auto fail = [&](const std::string& message) {
    throw std::runtime_error("[" + std::string(tag) + "] " + path + ": " + message);
  };
  // A device or a FIFO under that name would be replaced by a regular file: refused instead.
  struct stat existing {};
  if (::lstat(path.c_str(), &existing) == 0 && !S_ISREG(existing.st_mode) &&
      !S_ISLNK(existing.st_mode)) {
    fail(S_ISDIR(existing.st_mode) ? "is a directory" : "exists and is not a regular file");
  }
  if (::stat(path.c_str(), &existing) == 0 && !S_ISREG(existing.st_mode))
    fail("links to something that is not a regular file");

  // The temporary: same folder (rename is atomic only within one file system), hidden, named
  // after the process that writes it and a random part: .<name>.tmp-<pid>-<random>.
  const std::filesystem::path target(path);
  std::filesystem::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::string prefix = ".";  // appended, not "." + ...: GCC 12 warns falsely (-Wrestrict)
  prefix += target.filename().string();
  prefix += ".tmp-";
  remove_stale_temporaries(dir, prefix);
  std::random_device seed;
  std::mt19937_64 rng((std::uint64_t{seed()} << 32) ^ seed() ^
                      static_cast<std::uint64_t>(::getpid()));
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    std::ostringstream name;
    name << prefix << std::dec << ::getpid() << "-" << std::hex << (rng() & 0xffffffffffffULL);
    tmp = (dir / name.str()).string();
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST)
      fail("cannot create temp file '" + tmp + "': " + std::strerror(errno));
  }
  if (fd < 0) fail("cannot create a unique temp file in " + dir.string());

  // Any failure from here on removes the temporary; `path` itself is never touched.
  auto abandon = [&](const std::string& what, int err) {
    if (fd >= 0) ::close(fd);
    fd = -1;
    ::unlink(tmp.c_str());
    fail(what + ": " + std::strerror(err) + " (temp file '" + tmp + "' removed)");
  };
  const ByteSink write = [&](const void* data, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    while (size > 0) {
      const ssize_t n = ::write(fd, p, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) abandon("cannot write the temp file", n < 0 ? errno : ENOSPC);
      p += n;
      size -= static_cast<std::size_t>(n);
    }
  };
  try {
    fill(write);
  } catch (...) {  // from fill itself, or abandon() (which has cleaned up already)
    if (fd >= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
    }
    throw;
  }
  if (::fsync(fd) != 0) abandon("cannot fsync the temp file", errno);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) abandon("cannot close the temp file", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    abandon("cannot rename the temp file onto it", errno);

  // Make the rename itself durable; failing here leaves a complete file, so it is not an error.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomic(const std::string& path, std::span<const std::uint8_t> bytes) {
  write_file_atomic(path, [&](const ByteSink& write) { write(bytes.data(), bytes.size()); });
}

void write_file_atomic(const std::string& path, std::string_view text) {
  write_file_atomic(path, [&](const ByteSink& write) { write(text.data(), text.size()); });
}

std::string read_regular_file(const std::string& path,
                              std::size_t max_bytes,
                              std::string_view tag) {
  auto fail = [&](const std::string& what) {
    throw std::runtime_error("[" + std::string(tag) + "] " + path + ": " + what);
  };
  // O_NONBLOCK: a FIFO or a device must be refused below, not waited on here.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  const int stat_errno = errno;
  std::string bytes;
  std::string problem;
  if (!stat_ok) {
    problem = std::string("cannot stat: ") + std::strerror(stat_errno);
  } else if (!S_ISREG(st.st_mode)) {
    problem = "not a regular file";
  } else if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    problem = "the file's " + std::to_string(st.st_size) + " bytes are more than the " +
              std::to_string(max_bytes) + " this reader takes";
  } else {
    bytes.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        problem = n < 0 ? std::string("read failed: ") + std::strerror(errno)
                        : "file shrank while reading (" + std::to_string(done) + " of " +
                              std::to_string(bytes.size()) + " bytes)";
        break;
      }
      done += static_cast<std::size_t>(n);
    }
  }
  ::close(fd);
  if (!problem.empty()) fail(problem);
  return bytes;
}

}  // namespace gradlens::data
