// safetensors reader and atomic writer. The whole file is read into memory and every header field
// is checked before any tensor is handed out: the entries must tile the data buffer exactly.
#include "gradlens/nn/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

#include "gradlens/autograd/error.h"
#include "gradlens/data/file.h"

namespace gradlens::nn {
namespace {

// NOTE: the data are little-endian and copied with memcpy; a big-endian host would need byte swaps.
static_assert(std::endian::native == std::endian::little,
              "safetensors I/O assumes a little-endian host");

using Json = nlohmann::ordered_json;

constexpr const char* kMetadataKey = "__metadata__";

// Bytes per element, or 0 for a dtype we cannot read.
std::uint64_t item_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  if (dtype == "U8" || dtype == "BOOL") return 1;
  return 0;
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits = 0;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf or nan
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);  // 112 = 127 - 15
  } else if (mantissa == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal half: value = mantissa * 2^-24; normalize into a float.
    int e = -1;
    do {
      mantissa <<= 1;
      ++e;
    } while ((mantissa & 0x400u) == 0);
    bits = sign | static_cast<std::uint32_t>(112 - e) << 23 | ((mantissa & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(bits);
}

template <class T>
T load_le(const std::uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

std::string errno_str(int err) { return std::strerror(err); }

std::string quoted_list(const std::vector<std::string>& names, std::size_t limit) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) {
    if (i) out += ", ";
    out += "'" + names[i] + "'";
  }
  if (names.size() > limit) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out.empty() ? "none" : out;
}

// The parsed JSON drops duplicate keys silently, so they are caught while parsing.
// Limits on what an untrusted header may be: safetensors' own reader refuses headers over 100 MB.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
constexpr int kMaxJsonDepth = 16;
struct TooDeep {};

// A value from the header in a message: its JSON, cut to a line.
std::string shown(const Json& v) {
  std::string text = v.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

struct DuplicateKey {
  std::string key;
  int depth;
};

std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, bool& overflow) {
  std::uint64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) overflow = true;
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reading

void SafetensorsFile::fail(const std::string& message) const {
  throw std::runtime_error("[safetensors] " + path_ + ": " + message);
}

SafetensorsFile SafetensorsFile::load(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;

  // O_NONBLOCK: a FIFO or a device must be refused below, not waited on here.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) f.fail("cannot open: " + errno_str(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    f.fail("cannot stat: " + errno_str(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    f.fail("not a regular file");
  }
  // The header's length first: a large file that is not safetensors is refused before it is read.
  if (st.st_size >= 9) {
    std::uint8_t head[9];
    if (::pread(fd, head, sizeof head, 0) == static_cast<ssize_t>(sizeof head)) {
      const auto header_len = load_le<std::uint64_t>(head);
      const auto size = static_cast<std::uint64_t>(st.st_size);
      if (header_len > size - 8 || header_len > kMaxHeaderBytes) {
        ::close(fd);
        f.fail("header length " + std::to_string(header_len) + " is larger than " +
               (header_len > size - 8 ? "the " + std::to_string(size - 8) + " bytes after it"
                                      : "the " + std::to_string(kMaxHeaderBytes) + "-byte limit") +
               " (file " + std::to_string(size) + " bytes): truncated or not a safetensors file");
      }
      if (header_len == 0 || head[8] != '{') {
        ::close(fd);
        f.fail("the JSON header does not start with '{': not a safetensors file");
      }
    }
  }
  try {
    f.file_.resize(static_cast<std::size_t>(st.st_size));
  } catch (const std::bad_alloc&) {
    ::close(fd);
    f.fail("the file's " + std::to_string(st.st_size) + " bytes do not fit in memory");
  }
  std::size_t done = 0;
  while (done < f.file_.size()) {
    const ssize_t n = ::read(fd, f.file_.data() + done, f.file_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : 0;
      ::close(fd);
      f.fail(n < 0 ? "read failed: " + errno_str(err)
                   : "file shrank while reading (" + std::to_string(done) + " of " +
                         std::to_string(f.file_.size()) + " bytes)");
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);

  const std::uint64_t file_size = f.file_.size();
  if (file_size < 8) {
    f.fail("file is " + std::to_string(file_size) +
           " bytes, shorter than the 8-byte header length: not a safetensors file");
  }
  const auto header_len = load_le<std::uint64_t>(f.file_.data());
  if (header_len > file_size - 8) {
    f.fail("header length " + std::to_string(header_len) + " is larger than the " +
           std::to_string(file_size - 8) + " bytes after it (file " + std::to_string(file_size) +
           " bytes): truncated or not a safetensors file");
  }
  if (header_len == 0 || f.file_[8] != '{') {
    f.fail("the JSON header does not start with '{': not a safetensors file");
  }
  // NOTE: nlohmann's lexer takes a NUL byte as the end of input, so "{}\0garbage" would parse.
  if (const void* nul = std::memchr(f.file_.data() + 8, 0, header_len)) {
    f.fail("invalid JSON header: NUL byte at header offset " +
           std::to_string(static_cast<const std::uint8_t*>(nul) - (f.file_.data() + 8)));
  }
  f.data_start_ = 8 + header_len;
  const std::uint64_t buffer_size = file_size - f.data_start_;

  // Parse, failing on duplicate keys at any depth (object_start/key/object_end are well nested).
  Json header;
  std::vector<std::set<std::string>> keys_seen;
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    // A safetensors header nests three deep; deeper is refused while parsing, before anything
    // walks the tree recursively (dump, destruction).
    if (depth > kMaxJsonDepth) throw TooDeep{};
    if (event == Json::parse_event_t::object_start) keys_seen.emplace_back();
    if (event == Json::parse_event_t::object_end) keys_seen.pop_back();
    if (event == Json::parse_event_t::key &&
        !keys_seen.back().insert(parsed.get<std::string>()).second) {
      throw DuplicateKey{parsed.get<std::string>(), depth};
    }
    return true;
  };
  try {
    const auto* first = f.file_.data() + 8;
    header = Json::parse(first, first + header_len, callback);
  } catch (const TooDeep&) {
    f.fail("invalid JSON header: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  } catch (const DuplicateKey& dup) {
    f.fail(dup.depth <= 1 ? "duplicate tensor name '" + dup.key + "' in the header"
                          : "duplicate key '" + dup.key + "' in the header");
  } catch (const Json::exception& e) {
    // nlohmann quotes the offending token whole: a line, not a megabyte of it.
    std::string why = e.what();
    if (why.size() > 200) why = why.substr(0, 197) + "...";
    f.fail("invalid JSON header: " + why);
  }
  if (!header.is_object()) f.fail("the JSON header is not an object");

  auto get_u64 = [&](const Json& v, const std::string& what) -> std::uint64_t {
    if (!v.is_number_unsigned()) f.fail(what + " must be a non-negative integer, got " + shown(v));
    return v.get<std::uint64_t>();
  };

  for (const auto& [name, info] : header.items()) {
    if (name == kMetadataKey) {
      if (!info.is_object())
        f.fail("__metadata__ must be an object of strings, got " + shown(info));
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) {
          f.fail("__metadata__ value of '" + key + "' must be a string, got " + shown(value));
        }
        f.metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!info.is_object()) f.fail(where + ": entry must be an object, got " + shown(info));
    for (const char* field : {"dtype", "shape", "data_offsets"}) {
      if (!info.contains(field)) f.fail(where + ": missing field \"" + field + "\"");
    }
    const Json& dtype = info["dtype"];
    const Json& shape = info["shape"];
    const Json& offsets = info["data_offsets"];
    if (!dtype.is_string()) f.fail(where + ": dtype must be a string, got " + shown(dtype));
    Entry e;
    e.dtype = dtype.get<std::string>();
    const std::uint64_t item = item_size(e.dtype);
    if (item == 0) {
      f.fail(where + ": unknown or unsupported dtype '" + e.dtype +
             "' (supported: F32, F64, F16, BF16, I64, I32, U8, BOOL)");
    }
    if (!shape.is_array()) f.fail(where + ": shape must be an array, got " + shown(shape));
    std::uint64_t numel = 1;
    bool overflow = false;
    for (const Json& d : shape) {
      const std::uint64_t size = get_u64(d, where + ": every shape entry");
      if (size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        overflow = true;
      e.shape.push_back(static_cast<std::int64_t>(size));
      numel = checked_mul(numel, size, overflow);
    }
    const std::uint64_t nbytes = checked_mul(numel, item, overflow);
    if (!offsets.is_array() || offsets.size() != 2) {
      f.fail(where + ": data_offsets must be [begin, end], got " + shown(offsets));
    }
    e.begin = get_u64(offsets[0], where + ": data_offsets begin");
    e.end = get_u64(offsets[1], where + ": data_offsets end");
    if (e.end < e.begin) {
      f.fail(where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
             "] end before they begin");
    }
    if (overflow || e.end - e.begin != nbytes) {
      f.fail(where + " (" + e.dtype + " " + shape_str(e.shape) + ") needs " +
             (overflow ? std::string("more than 2^64") : std::to_string(nbytes)) +
             " bytes but its data_offsets [" + std::to_string(e.begin) + ", " +
             std::to_string(e.end) + "] span " + std::to_string(e.end - e.begin));
    }
    f.entries_.emplace(name, std::move(e));
    f.order_.push_back(name);
  }

  // The entries must tile [0, buffer_size) exactly: no overlap, no hole, nothing past the end.
  std::stable_sort(f.order_.begin(), f.order_.end(), [&](const auto& a, const auto& b) {
    const Entry& x = f.entries_.at(a);
    const Entry& y = f.entries_.at(b);
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  std::string tiling_error;
  std::uint64_t covered = 0;
  std::string previous;
  for (const std::string& name : f.order_) {
    const Entry& e = f.entries_.at(name);
    if (tiling_error.empty() && e.begin != covered) {
      const std::string range = "[" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
      tiling_error = e.begin < covered
                         ? "tensor '" + name + "' data_offsets " + range + " overlap tensor '" +
                               previous + "', which ends at " + std::to_string(covered)
                         : "hole in the data buffer: bytes [" + std::to_string(covered) + ", " +
                               std::to_string(e.begin) + ") before tensor '" + name +
                               "' belong to no tensor";
    }
    if (e.end >= covered) {
      covered = e.end;
      previous = name;
    }
  }
  if (tiling_error.empty() && covered > buffer_size) {
    f.fail("truncated: the header describes " + std::to_string(covered) +
           " data bytes but the file holds only " + std::to_string(buffer_size) +
           " after the header (file " + std::to_string(file_size) + " bytes)");
  }
  for (const std::string& name : f.order_) {
    const Entry& e = f.entries_.at(name);
    if (e.end > buffer_size) {
      f.fail("tensor '" + name + "' data_offsets [" + std::to_string(e.begin) + ", " +
             std::to_string(e.end) + "] are outside the data buffer (" +
             std::to_string(buffer_size) + " bytes)");
    }
  }
  if (!tiling_error.empty()) f.fail(tiling_error);
  if (covered < buffer_size) {
    f.fail("hole in the data buffer: bytes [" + std::to_string(covered) + ", " +
           std::to_string(buffer_size) + ") after the last tensor belong to no tensor");
  }
  return f;
}

std::vector<std::string> SafetensorsFile::names() const { return order_; }

bool SafetensorsFile::contains(const std::string& name) const { return entries_.contains(name); }

const SafetensorsFile::Entry& SafetensorsFile::entry(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) {
    fail("no tensor named '" + name + "'; the file has " + quoted_list(order_, 20));
  }
  return it->second;
}

const std::uint8_t* SafetensorsFile::bytes(const Entry& e) const {
  return file_.data() + data_start_ + e.begin;
}

const std::string& SafetensorsFile::dtype(const std::string& name) const {
  return entry(name).dtype;
}

const Shape& SafetensorsFile::shape(const std::string& name) const { return entry(name).shape; }

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const Entry& e = entry(name);
  const std::uint8_t* p = bytes(e);
  const std::size_t n = static_cast<std::size_t>((e.end - e.begin) / item_size(e.dtype));
  std::vector<float> values(n);
  if (e.dtype == "F32") {
    if (n) std::memcpy(values.data(), p, n * sizeof(float));
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      if (e.dtype == "F64") {
        values[i] = static_cast<float>(load_le<double>(p + 8 * i));
      } else if (e.dtype == "I64") {
        values[i] = static_cast<float>(load_le<std::int64_t>(p + 8 * i));
      } else if (e.dtype == "I32") {
        values[i] = static_cast<float>(load_le<std::int32_t>(p + 4 * i));
      } else if (e.dtype == "F16") {
        values[i] = half_to_float(load_le<std::uint16_t>(p + 2 * i));
      } else if (e.dtype == "BF16") {
        values[i] = std::bit_cast<float>(std::uint32_t{load_le<std::uint16_t>(p + 2 * i)} << 16);
      } else if (e.dtype == "U8") {
        values[i] = static_cast<float>(p[i]);
      } else {  // BOOL
        values[i] = p[i] != 0 ? 1.f : 0.f;
      }
    }
  }
  return Tensor::from_vector(values, e.shape);
}

std::vector<std::int64_t> SafetensorsFile::int64s(const std::string& name) const {
  const Entry& e = entry(name);
  const std::uint8_t* p = bytes(e);
  const std::size_t n = static_cast<std::size_t>((e.end - e.begin) / item_size(e.dtype));
  std::vector<std::int64_t> values(n);
  if (e.dtype == "I64") {
    if (n) std::memcpy(values.data(), p, n * sizeof(std::int64_t));
  } else if (e.dtype == "I32") {
    for (std::size_t i = 0; i < n; ++i) values[i] = load_le<std::int32_t>(p + 4 * i);
  } else if (e.dtype == "U8") {
    for (std::size_t i = 0; i < n; ++i) values[i] = p[i];
  } else {
    fail("tensor '" + name + "' has dtype " + e.dtype + "; int64s() reads I64, I32 or U8");
  }
  return values;
}

std::vector<double> SafetensorsFile::float64s(const std::string& name) const {
  const Entry& e = entry(name);
  const std::uint8_t* p = bytes(e);
  const std::size_t n = static_cast<std::size_t>((e.end - e.begin) / item_size(e.dtype));
  std::vector<double> values(n);
  if (e.dtype == "F64") {
    if (n) std::memcpy(values.data(), p, n * sizeof(double));
  } else if (e.dtype == "F32") {
    for (std::size_t i = 0; i < n; ++i) values[i] = load_le<float>(p + 4 * i);
  } else {
    fail("tensor '" + name + "' has dtype " + e.dtype + "; float64s() reads F64 or F32");
  }
  return values;
}

std::vector<std::uint8_t> SafetensorsFile::bytes_u8(const std::string& name) const {
  const Entry& e = entry(name);
  if (e.dtype != "U8") fail("tensor '" + name + "' has dtype " + e.dtype + "; bytes_u8() reads U8");
  const std::uint8_t* p = bytes(e);
  return std::vector<std::uint8_t>(p, p + (e.end - e.begin));
}

std::map<std::string, Tensor> SafetensorsFile::float_tensors() const {
  std::map<std::string, Tensor> out;
  for (const std::string& name : order_) {
    if (entries_.at(name).dtype == "F32") out.emplace(name, tensor(name));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

void SafetensorsWriter::add_bytes(const std::string& name,
                                  const char* dtype,
                                  Shape shape,
                                  std::size_t count,
                                  const void* data,
                                  std::size_t item_size) {
  GRADLENS_CHECK(
      !name.empty() && name != kMetadataKey, "[safetensors] invalid tensor name '", name, "'");
  GRADLENS_CHECK(
      std::none_of(
          entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == name; }),
      "[safetensors] duplicate tensor name '",
      name,
      "'");
  GRADLENS_CHECK(std::all_of(shape.begin(), shape.end(), [](std::int64_t d) { return d >= 0; }) &&
                     static_cast<std::size_t>(shape_numel(shape)) == count,
                 "[safetensors] tensor '",
                 name,
                 "': ",
                 count,
                 " values do not fill shape ",
                 shape_str(shape));
  Entry e{name, dtype, std::move(shape), std::vector<std::uint8_t>(count * item_size)};
  if (count) std::memcpy(e.bytes.data(), data, count * item_size);
  entries_.push_back(std::move(e));
}

void SafetensorsWriter::add(const std::string& name, const Tensor& t) {
  GRADLENS_CHECK(t.defined(), "[safetensors] tensor '", name, "' is undefined");
  const std::vector<float> values = t.to_vector();
  add_bytes(name, "F32", t.shape(), values.size(), values.data(), sizeof(float));
}

void SafetensorsWriter::add_int64(const std::string& name,
                                  const std::vector<std::int64_t>& v,
                                  Shape shape) {
  add_bytes(name, "I64", std::move(shape), v.size(), v.data(), sizeof(std::int64_t));
}

void SafetensorsWriter::add_uint8(const std::string& name,
                                  const std::vector<std::uint8_t>& v,
                                  Shape shape) {
  add_bytes(name, "U8", std::move(shape), v.size(), v.data(), 1);
}

void SafetensorsWriter::add_float64(const std::string& name,
                                    const std::vector<double>& v,
                                    Shape shape) {
  add_bytes(name, "F64", std::move(shape), v.size(), v.data(), sizeof(double));
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

void SafetensorsWriter::save(const std::string& path) const {
  auto fail = [&](const std::string& message) {
    throw std::runtime_error("[safetensors] " + path + ": " + message);
  };

  // Header: __metadata__ first, then the entries in insertion order, padded with spaces to a
  // multiple of 8 so that the data buffer starts aligned (as the reference writer does).
  Json header = Json::object();
  if (!metadata_.empty()) header[kMetadataKey] = metadata_;
  std::uint64_t offset = 0;
  for (const Entry& e : entries_) {
    header[e.name] = {{"dtype", e.dtype},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  std::string json;
  try {
    json = header.dump();
  } catch (const Json::exception& e) {
    fail(std::string("cannot encode the header (names and metadata must be UTF-8): ") + e.what());
  }
  json.append((8 - json.size() % 8) % 8, ' ');
  unsigned char length[8];
  const std::uint64_t json_size = json.size();
  std::memcpy(length, &json_size, 8);

  data::write_file_atomic(
      path,
      [&](const data::ByteSink& write) {
        write(length, 8);
        write(json.data(), json.size());
        for (const Entry& e : entries_) write(e.bytes.data(), e.bytes.size());
      },
      "safetensors");
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors) {
  SafetensorsWriter writer;
  for (const auto& [name, t] : tensors) writer.add(name, t);
  writer.save(path);
}

void load_model(Module& model, const std::string& path, bool allow_nonfinite) {
  std::error_code ec;  // a link loop or an unreadable folder is named as such, not as "not found"
  if (!std::filesystem::exists(path, ec))
    throw std::runtime_error(ec ? "model file " + path + ": " + ec.message()
                                : "model file not found: " + path);
  const SafetensorsFile file = SafetensorsFile::load(path);
  // Every tensor of a state_dict is F32: another dtype is named as such, not reported missing
  // (F64) or silently skipped (I64).
  for (const std::string& name : file.names()) {
    if (file.dtype(name) != "F32")
      throw std::runtime_error("[safetensors] " + path + ": tensor '" + name + "' is " +
                               file.dtype(name) + " " + shape_str(file.shape(name)) +
                               "; a model's tensors are F32");
  }
  const std::map<std::string, Tensor> tensors = file.float_tensors();
  // A NaN weight would make every prediction the same class without a word: refused by name.
  for (const auto& [name, tensor] : allow_nonfinite ? std::map<std::string, Tensor>{} : tensors) {
    const std::int64_t bad = first_nonfinite(tensor);
    if (bad >= 0) {
      const float value = tensor.to_vector()[static_cast<std::size_t>(bad)];
      throw std::runtime_error("[safetensors] " + path + ": tensor '" + name + "' " +
                               shape_str(tensor.shape()) + " has " +
                               (std::isnan(value) ? "NaN" : "an infinite value") + " at element " +
                               std::to_string(bad) +
                               " (not a trained model; --allow-nonfinite, allow_nonfinite in the "
                               "library, loads it anyway)");
    }
  }
  try {
    model.load_state_dict(tensors);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

}  // namespace gradlens::nn
