// safetensors I/O: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the
// data buffer that the tensors tile exactly. Every file problem throws "[safetensors] <path>: ...".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"
#include "gradlens/nn/module.h"

namespace gradlens::nn {

/// A whole safetensors file held in memory, checked on load.
class GRADLENS_API SafetensorsFile {
 public:
  /// Reads and validates `path`; throws std::runtime_error naming the file on any problem.
  static SafetensorsFile load(const std::string& path);

  /// Tensor names in the order of their data offsets.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  /// "F32", "F64", "I64", "I32", "U8", "BOOL", "F16" or "BF16".
  const std::string& dtype(const std::string& name) const;
  const Shape& shape(const std::string& name) const;
  /// A float32 CPU tensor; other dtypes are converted, values passed as is.
  Tensor tensor(const std::string& name) const;
  /// I64, I32 or U8 values, exact.
  std::vector<std::int64_t> int64s(const std::string& name) const;
  /// F64 exact, F32 widened.
  std::vector<double> float64s(const std::string& name) const;
  /// U8 values.
  std::vector<std::uint8_t> bytes_u8(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// Every F32 tensor by name (for load_state_dict).
  std::map<std::string, Tensor> float_tensors() const;
  const std::string& path() const { return path_; }

 private:
  struct Entry {
    std::string dtype;
    Shape shape;
    std::uint64_t begin = 0;  // byte offsets into the data buffer
    std::uint64_t end = 0;
  };
  const Entry& entry(const std::string& name) const;
  const std::uint8_t* bytes(const Entry& e) const;
  [[noreturn]] void fail(const std::string& message) const;

  std::string path_;
  std::vector<std::uint8_t> file_;  // the whole file
  std::uint64_t data_start_ = 0;    // 8 + header length
  std::map<std::string, Entry> entries_;
  std::vector<std::string> order_;  // names by data offset
  std::map<std::string, std::string> metadata_;
};

/// Collects tensors in memory and writes them as one safetensors file.
class GRADLENS_API SafetensorsWriter {
 public:
  /// F32; the values are copied to the host now.
  void add(const std::string& name, const Tensor& t);
  void add_int64(const std::string& name, const std::vector<std::int64_t>& v, Shape shape);
  void add_uint8(const std::string& name, const std::vector<std::uint8_t>& v, Shape shape);
  void add_float64(const std::string& name, const std::vector<double>& v, Shape shape);
  void set_metadata(const std::string& key, const std::string& value);
  /// Atomic: writes a temp file beside `path`, fsyncs, renames; on failure `path` is untouched.
  void save(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    std::string dtype;
    Shape shape;
    std::vector<std::uint8_t> bytes;
  };
  void add_bytes(const std::string& name,
                 const char* dtype,
                 Shape shape,
                 std::size_t count,
                 const void* data,
                 std::size_t item_size);

  std::vector<Entry> entries_;  // in insertion order, which is also the data order
  std::map<std::string, std::string> metadata_;
};

/// Writes every tensor of `tensors` as F32 (atomically, as SafetensorsWriter::save).
GRADLENS_API void save_safetensors(const std::string& path,
                                   const std::map<std::string, Tensor>& tensors);

/// Loads the state_dict saved in `path` into `model` (PyTorch's names); a missing file, a
/// missing, extra or mis-shaped tensor, or (unless allow_nonfinite) a NaN or infinite value is a
/// std::runtime_error naming the file and the tensor.
GRADLENS_API void load_model(Module& model, const std::string& path, bool allow_nonfinite = false);

}  // namespace gradlens::nn
