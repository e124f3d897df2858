// safetensors: round trips, the reference files, every malformed-file error, and atomic saves that
// leave an existing file byte-identical when they fail.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gradlens/nn/lenet.h"
#include "gradlens/nn/safetensors.h"
#include "tests/testing.h"

namespace gradlens::nn {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed (writable again first) at the end.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("gradlens_safetensors_" + std::string(info->name()) + "_" +
                                         std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path path_;
};

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string u64_le(std::uint64_t v) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &v, 8);
  return out;
}

// A safetensors file from a JSON header and a data buffer; `header_len` overrides the length field.
std::string st_bytes(const std::string& json,
                     const std::string& data,
                     std::uint64_t header_len = std::numeric_limits<std::uint64_t>::max()) {
  const std::uint64_t len =
      header_len == std::numeric_limits<std::uint64_t>::max() ? json.size() : header_len;
  return u64_le(len) + json + data;
}

template <class T>
std::string raw(std::initializer_list<T> values) {
  std::string out(values.size() * sizeof(T), '\0');
  std::memcpy(out.data(), std::data(values), out.size());
  return out;
}

// Runs `f`, expecting std::runtime_error "[safetensors] <path>: ..." containing every part.
template <class F>
::testing::AssertionResult fails_with(F&& f,
                                      const std::string& path,
                                      std::initializer_list<std::string> parts) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    const std::string prefix = "[safetensors] " + path + ": ";
    if (message.rfind(prefix, 0) != 0) {
      return ::testing::AssertionFailure()
             << "message does not start with '" << prefix << "': " << message;
    }
    for (const std::string& part : parts) {
      if (message.find(part) == std::string::npos) {
        return ::testing::AssertionFailure() << "message lacks '" << part << "': " << message;
      }
    }
    return ::testing::AssertionSuccess() << message;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "wrong exception type: " << e.what();
  }
  return ::testing::AssertionFailure() << "no exception";
}

::testing::AssertionResult load_fails(const std::string& path,
                                      std::initializer_list<std::string> parts) {
  return fails_with([&] { SafetensorsFile::load(path); }, path, parts);
}

TEST(Safetensors, RoundTripAllWriterDtypesWithMetadata) {
  TempDir dir;
  const std::string path = dir.file("round.safetensors");
  const std::vector<float> f32 = {1.5f, -2.25f, 0.f, 3e-38f, -1e30f, 7.f};
  const std::vector<std::int64_t> i64 = {
      std::numeric_limits<std::int64_t>::min(), -1, 0, std::numeric_limits<std::int64_t>::max()};
  const std::vector<std::uint8_t> u8 = {0, 1, 128, 255};
  const std::vector<double> f64 = {0.1, -1e300, 5e-324, -0.0, 1.0 / 3.0};

  SafetensorsWriter writer;
  writer.add("weights", Tensor::from_vector(f32, {2, 3}));
  writer.add_int64("labels", i64, {4});
  writer.add_uint8("pixels", u8, {2, 1, 2});
  writer.add_float64("alphas", f64, {5});
  writer.add_int64("empty", {}, {0, 3});
  writer.add("scalar", Tensor::from_vector({42.f}, {}));
  writer.set_metadata("format", "pt");
  writer.set_metadata("note", "gradlens \xc3\xa9t\xc3\xa9");  // UTF-8
  writer.save(path);
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"round.safetensors"});  // no temp file left

  // The data buffer starts 8-byte aligned, as the reference writer pads the header.
  const std::string bytes = read_file(path);
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
  EXPECT_EQ(bytes[8], '{');

  const SafetensorsFile file = SafetensorsFile::load(path);
  EXPECT_EQ(file.names(),
            (std::vector<std::string>{"weights", "labels", "pixels", "alphas", "empty", "scalar"}));
  EXPECT_TRUE(file.contains("labels"));
  EXPECT_FALSE(file.contains("__metadata__"));
  EXPECT_EQ(file.dtype("weights"), "F32");
  EXPECT_EQ(file.dtype("labels"), "I64");
  EXPECT_EQ(file.dtype("pixels"), "U8");
  EXPECT_EQ(file.dtype("alphas"), "F64");
  EXPECT_EQ(file.shape("weights"), (Shape{2, 3}));
  EXPECT_EQ(file.shape("pixels"), (Shape{2, 1, 2}));
  EXPECT_EQ(file.shape("empty"), (Shape{0, 3}));
  EXPECT_EQ(file.shape("scalar"), Shape{});

  EXPECT_EQ(file.tensor("weights").to_vector(), f32);
  EXPECT_EQ(file.tensor("weights").shape(), (Shape{2, 3}));
  EXPECT_EQ(file.int64s("labels"), i64);
  EXPECT_EQ(file.bytes_u8("pixels"), u8);
  EXPECT_EQ(file.int64s("pixels"), (std::vector<std::int64_t>{0, 1, 128, 255}));
  const std::vector<double> alphas = file.float64s("alphas");
  ASSERT_EQ(alphas.size(), f64.size());
  for (std::size_t i = 0; i < f64.size(); ++i) {
    EXPECT_EQ(std::memcmp(&alphas[i], &f64[i], sizeof(double)), 0) << i;  // bit-exact, -0.0 too
  }
  EXPECT_TRUE(file.int64s("empty").empty());
  EXPECT_EQ(file.tensor("scalar").to_vector(), std::vector<float>{42.f});

  // Conversions: F32 widened exactly, F64/I64/U8 narrowed to float32 tensors.
  const std::vector<double> widened = file.float64s("weights");
  for (std::size_t i = 0; i < f32.size(); ++i) EXPECT_EQ(widened[i], static_cast<double>(f32[i]));
  EXPECT_EQ(file.tensor("alphas").to_vector()[0], 0.1f);
  EXPECT_EQ(file.tensor("pixels").to_vector(), (std::vector<float>{0.f, 1.f, 128.f, 255.f}));
  EXPECT_EQ(file.tensor("labels").to_vector()[1], -1.f);

  EXPECT_EQ(file.metadata(),
            (std::map<std::string, std::string>{{"format", "pt"},
                                                {"note", "gradlens \xc3\xa9t\xc3\xa9"}}));
  const auto floats = file.float_tensors();
  ASSERT_EQ(floats.size(), 2u);  // weights and scalar: only the F32 entries
  EXPECT_EQ(floats.at("weights").to_vector(), f32);

  // save_safetensors writes the same F32 values (names sorted by the map).
  const std::string path2 = dir.file("map.safetensors");
  save_safetensors(path2, floats);
  const SafetensorsFile file2 = SafetensorsFile::load(path2);
  EXPECT_EQ(file2.names(), (std::vector<std::string>{"scalar", "weights"}));
  EXPECT_TRUE(file2.metadata().empty());
  EXPECT_EQ(file2.tensor("weights").to_vector(), f32);
}

TEST(Safetensors, ReadsOtherDtypesPaddingAndAnyEntryOrder) {
  TempDir dir;
  const std::string path = dir.file("dtypes.safetensors");
  // Entries listed out of offset order; header right-padded with spaces.
  const std::string json = R"({"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},)"
                           R"("h":{"dtype":"F16","shape":[5],"data_offsets":[12,22]},)"
                           R"("i":{"dtype":"I32","shape":[2],"data_offsets":[0,8]},)"
                           R"("flag":{"dtype":"BOOL","shape":[2],"data_offsets":[22,24]}}     )";
  const std::string data = raw<std::int32_t>({-5, 7}) + raw<std::uint16_t>({0x3F80, 0xC040}) +
                           raw<std::uint16_t>({0x3C00, 0xC000, 0x0001, 0x7C00, 0x3555}) +
                           std::string("\x00\x01", 2);
  write_file(path, st_bytes(json, data));
  const SafetensorsFile file = SafetensorsFile::load(path);
  EXPECT_EQ(file.names(), (std::vector<std::string>{"i", "b", "h", "flag"}));
  EXPECT_EQ(file.int64s("i"), (std::vector<std::int64_t>{-5, 7}));
  EXPECT_EQ(file.tensor("i").to_vector(), (std::vector<float>{-5.f, 7.f}));
  EXPECT_EQ(file.tensor("b").to_vector(), (std::vector<float>{1.f, -3.f}));
  const std::vector<float> h = file.tensor("h").to_vector();
  EXPECT_EQ(h[0], 1.f);
  EXPECT_EQ(h[1], -2.f);
  EXPECT_EQ(h[2], 0x1p-24f);  // smallest subnormal half
  EXPECT_EQ(h[3], std::numeric_limits<float>::infinity());
  EXPECT_EQ(h[4], 0.333251953125f);
  EXPECT_EQ(file.tensor("flag").to_vector(), (std::vector<float>{0.f, 1.f}));
  EXPECT_EQ(file.dtype("flag"), "BOOL");
}

TEST(Safetensors, AccessorErrorsNameTheTensorAndDtype) {
  TempDir dir;
  const std::string path = dir.file("acc.safetensors");
  SafetensorsWriter writer;
  writer.add("w", Tensor::from_vector({1.f, 2.f}, {2}));
  writer.add_int64("labels", {1, 2}, {2});
  writer.add_uint8("img", {1, 2}, {2});
  writer.save(path);
  const SafetensorsFile file = SafetensorsFile::load(path);
  EXPECT_TRUE(fails_with([&] { file.int64s("w"); }, path, {"'w'", "F32", "int64s()"}));
  EXPECT_TRUE(
      fails_with([&] { file.float64s("labels"); }, path, {"'labels'", "I64", "float64s()"}));
  EXPECT_TRUE(
      fails_with([&] { file.bytes_u8("labels"); }, path, {"'labels'", "I64", "bytes_u8()"}));
  EXPECT_TRUE(fails_with([&] { file.tensor("fc9.weight"); }, path, {"'fc9.weight'", "'w'"}));
  EXPECT_TRUE(fails_with([&] { file.dtype("nope"); }, path, {"no tensor named 'nope'"}));
  EXPECT_TRUE(fails_with([&] { file.shape("nope"); }, path, {"no tensor named 'nope'"}));
  EXPECT_TRUE(fails_with([&] { file.int64s("nope"); }, path, {"no tensor named 'nope'"}));
}

TEST(Safetensors, WriterRejectsCallerMistakes) {
  SafetensorsWriter writer;
  writer.add_int64("a", {1, 2, 3}, {3});
  EXPECT_THROW(writer.add_int64("a", {1}, {1}), std::invalid_argument);     // duplicate
  EXPECT_THROW(writer.add_int64("b", {1, 2}, {3}), std::invalid_argument);  // count != numel
  EXPECT_THROW(writer.add_uint8("c", {1}, {-1}), std::invalid_argument);
  EXPECT_THROW(writer.add_float64("__metadata__", {1.0}, {1}), std::invalid_argument);
  EXPECT_THROW(writer.add("", Tensor::from_vector({1.f}, {1})), std::invalid_argument);
  EXPECT_THROW(writer.add("u", Tensor{}), std::invalid_argument);
}

TEST(Safetensors, ReadsReferenceCifarNet) {
  GRADLENS_SHARED_FILE(path, "reference/cifar_net.safetensors");
  const SafetensorsFile file = SafetensorsFile::load(path);
  const std::vector<std::pair<std::string, Shape>> expected = {{"conv1.weight", {6, 3, 5, 5}},
                                                               {"conv1.bias", {6}},
                                                               {"conv2.weight", {16, 6, 5, 5}},
                                                               {"conv2.bias", {16}},
                                                               {"fc1.weight", {120, 400}},
                                                               {"fc1.bias", {120}},
                                                               {"fc2.weight", {84, 120}},
                                                               {"fc2.bias", {84}},
                                                               {"fc3.weight", {10, 84}},
                                                               {"fc3.bias", {10}}};
  const std::vector<std::string> names = file.names();
  ASSERT_EQ(names.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(names[i], expected[i].first);
    EXPECT_EQ(file.dtype(names[i]), "F32");
    EXPECT_EQ(file.shape(names[i]), expected[i].second) << names[i];
  }
  EXPECT_EQ(file.metadata().at("format"), "pt");
  const auto tensors = file.float_tensors();
  ASSERT_EQ(tensors.size(), 10u);
  const std::vector<float> w = tensors.at("conv1.weight").to_vector();
  ASSERT_EQ(w.size(), 450u);
  EXPECT_EQ(w[0], -0.16058707237243652f);  // values read with Python's struct from the same bytes
  EXPECT_EQ(w[1], -0.14132890105247498f);
  const std::vector<float> b = file.tensor("fc3.bias").to_vector();
  EXPECT_EQ(b[0], -0.51566082239151f);
  EXPECT_EQ(b[1], -0.5397865772247314f);
}

TEST(Safetensors, ReadsReferencePublicInputs) {
  GRADLENS_SHARED_FILE(path, "reference/public_inputs.safetensors");
  const SafetensorsFile file = SafetensorsFile::load(path);
  EXPECT_EQ(file.dtype("labels"), "I64");
  EXPECT_EQ(file.int64s("labels"),
            (std::vector<std::int64_t>{3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8}));
  EXPECT_EQ(file.dtype("images_u8"), "U8");
  EXPECT_EQ(file.shape("images_u8"), (Shape{16, 3, 32, 32}));
  const std::vector<std::uint8_t> img = file.bytes_u8("images_u8");
  ASSERT_EQ(img.size(), 16u * 3 * 32 * 32);
  EXPECT_EQ(std::vector<std::uint8_t>(img.begin(), img.begin() + 8),
            (std::vector<std::uint8_t>{158, 159, 165, 166, 160, 156, 162, 159}));
  std::int64_t sum = 0;
  for (std::uint8_t v : img) sum += v;
  EXPECT_EQ(sum, 5830077);
  EXPECT_EQ(file.shape("inputs"), (Shape{16, 3, 32, 32}));
}

TEST(Safetensors, MissingUnreadableAndShortFiles) {
  TempDir dir;
  EXPECT_TRUE(load_fails(dir.file("absent.safetensors"), {"cannot open", "No such file"}));
  EXPECT_TRUE(load_fails(dir.path().string(), {"not a regular file"}));
  const std::string empty = dir.file("empty.safetensors");
  write_file(empty, "");
  EXPECT_TRUE(load_fails(empty, {"0 bytes", "shorter than the 8-byte header length"}));
  const std::string short5 = dir.file("short.safetensors");
  write_file(short5, std::string("\x10\x00\x00\x00\x00", 5));
  EXPECT_TRUE(load_fails(short5, {"5 bytes", "shorter than the 8-byte"}));
}

struct Malformed {
  const char* label;
  std::string bytes;
  std::vector<std::string> parts;
};

TEST(Safetensors, MalformedFilesGiveClearErrors) {
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string eight(8, '\0');
  const std::vector<Malformed> cases = {
      {"header length past the end",
       st_bytes("{}", "", 1000),
       {"header length 1000 is larger than the 2 bytes after it"}},
      {"header length near 2^64", st_bytes("{}", "", ~std::uint64_t{0} - 3), {"header length"}},
      {"not JSON", st_bytes("{\"a\": [1, 2", ""), {"invalid JSON header"}},
      // Once a stack overflow: nlohmann parsed 70,000 nested arrays, then dump() recursed.
      {"nested 70,000 deep",
       st_bytes("{\"a\":" + std::string(70000, '[') + std::string(70000, ']') + "}", ""),
       {"nested deeper than 16 levels"}},
      {"a long value is cut in the message",
       st_bytes(R"({"a":{"dtype":[)" +
                    [] {
                      std::string many;
                      for (int i = 0; i < 2000; ++i) many += "1,";
                      return many + "1";
                    }() +
                    R"(],"shape":[2],"data_offsets":[0,8]}})",
                eight),
       {"tensor 'a'", "dtype must be a string", "..."}},
      {"a long token is cut in the parser's message",
       st_bytes(R"({"a":{"dtype":)" + std::string(5000, '1') + "}}", ""),
       {"invalid JSON header", "number overflow", "..."}},
      {"not an object", st_bytes("[1, 2]", ""), {"does not start with '{'"}},
      {"invalid UTF-8", st_bytes("{\"\xff\":{}}", ""), {"invalid JSON header"}},
      {"NUL padding", st_bytes(std::string("{}\0\0", 4), ""), {"invalid JSON header"}},
      {"entry not an object", st_bytes(R"({"a": 3})", ""), {"tensor 'a'", "must be an object"}},
      {"missing dtype",
       st_bytes(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", eight),
       {"tensor 'a'", "missing field \"dtype\""}},
      {"missing shape",
       st_bytes(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", eight),
       {"tensor 'a'", "missing field \"shape\""}},
      {"missing data_offsets",
       st_bytes(R"({"a":{"dtype":"F32","shape":[2]}})", eight),
       {"tensor 'a'", "missing field \"data_offsets\""}},
      {"unknown dtype",
       st_bytes(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", eight),
       {"tensor 'a'", "dtype 'Q7'"}},
      {"negative shape",
       st_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight),
       {"tensor 'a'", "non-negative integer", "-2"}},
      {"fractional offset",
       st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.5]}})", eight),
       {"tensor 'a'", "data_offsets end", "non-negative integer"}},
      {"three offsets",
       st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", eight),
       {"tensor 'a'", "data_offsets must be [begin, end]"}},
      {"shape/offset mismatch",
       st_bytes(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", std::string(20, 0)),
       {"tensor 'w' (F32 [2, 3]) needs 24 bytes but its data_offsets [0, 20] span 20"}},
      {"shape overflow",
       st_bytes(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                eight),
       {"tensor 'w'", "more than 2^64"}},
      {"offsets reversed",
       st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight),
       {"tensor 'a'", "[8, 0] end before they begin"}},
      {"offsets out of the buffer",
       st_bytes("{" + ok_entry + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})",
                std::string(16, 0)),
       {"tensor 'b' data_offsets [16, 24] are outside the data buffer (16 bytes)"}},
      {"overlap",
       st_bytes("{" + ok_entry + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                std::string(12, 0)),
       {"tensor 'b' data_offsets [4, 12] overlap tensor 'a', which ends at 8"}},
      {"hole between tensors",
       st_bytes("{" + ok_entry + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                std::string(20, 0)),
       {"hole in the data buffer: bytes [8, 12) before tensor 'b'"}},
      {"hole at the start",
       st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, 0)),
       {"hole in the data buffer: bytes [0, 4) before tensor 'a'"}},
      {"trailing bytes",
       st_bytes("{" + ok_entry + "}", std::string(12, 0)),
       {"hole in the data buffer: bytes [8, 12) after the last tensor"}},
      {"duplicate names",
       st_bytes("{" + ok_entry + "," + ok_entry + "}", eight),
       {"duplicate tensor name 'a'"}},
      {"duplicate field",
       st_bytes(R"({"a":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}})", eight),
       {"duplicate key 'dtype'"}},
      {"truncated data",
       st_bytes("{" + ok_entry + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                std::string(12, 0)),
       {"truncated: the header describes 16 data bytes but the file holds only 12"}},
      {"metadata value not a string",
       st_bytes(R"({"__metadata__":{"epoch":3},)" + ok_entry + "}", eight),
       {"__metadata__ value of 'epoch' must be a string"}},
      {"metadata not an object",
       st_bytes(R"({"__metadata__":"x",)" + ok_entry + "}", eight),
       {"__metadata__ must be an object"}},
  };
  TempDir dir;
  int index = 0;
  for (const Malformed& c : cases) {
    SCOPED_TRACE(c.label);
    const std::string path = dir.file("bad" + std::to_string(index++) + ".safetensors");
    write_file(path, c.bytes);
    try {
      SafetensorsFile::load(path);
      ADD_FAILURE() << "loaded without error";
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("[safetensors] " + path + ": ", 0), 0u) << message;
      EXPECT_LT(message.size(), path.size() + 300) << "one line, not the file: " << message;
      for (const std::string& part : c.parts) {
        EXPECT_NE(message.find(part), std::string::npos) << "lacks '" << part << "': " << message;
      }
    }
  }
}

// ---- atomic save ------------------------------------------------------------------------------

SafetensorsWriter big_writer(std::size_t n) {
  SafetensorsWriter writer;
  writer.add("x", Tensor::from_vector(std::vector<float>(n, 0.5f), {static_cast<std::int64_t>(n)}));
  return writer;
}

TEST(Safetensors, SaveReplacesAnExistingFile) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  big_writer(4).save(path);
  big_writer(16).save(path);
  EXPECT_EQ(SafetensorsFile::load(path).shape("x"), Shape{16});
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"model.safetensors"});
}

TEST(Safetensors, SaveIntoMissingDirectoryFails) {
  TempDir dir;
  const std::string path = dir.file("no_such_dir/model.safetensors");
  EXPECT_TRUE(fails_with([&] { big_writer(4).save(path); }, path, {"No such file or directory"}));
  EXPECT_TRUE(dir.listing().empty());
  // A "directory" that is a regular file fails the same way, and leaves that file alone.
  const std::string blocker = dir.file("blocker");
  write_file(blocker, "keep");
  const std::string under_file = blocker + "/model.safetensors";
  EXPECT_TRUE(fails_with([&] { big_writer(4).save(under_file); }, under_file, {"Not a directory"}));
  EXPECT_EQ(read_file(blocker), "keep");
}

TEST(Safetensors, SaveOntoADirectoryIsRefusedBeforeWriting) {
  TempDir dir;
  const std::string path = dir.file("taken");
  fs::create_directory(path);
  EXPECT_TRUE(fails_with([&] { big_writer(4).save(path); }, path, {"is a directory"}));
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"taken"});
}

TEST(Safetensors, SaveIntoUnwritableDirectoryLeavesOldFile) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  big_writer(8).save(path);
  const std::string before = read_file(path);
  fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec);
  if (::access(dir.path().c_str(), W_OK) == 0) {  // root ignores directory permissions
    fs::permissions(dir.path(), fs::perms::owner_all);
    GTEST_SKIP() << "directory permissions are not enforced for this user (root?)";
  }
  EXPECT_TRUE(fails_with([&] { big_writer(64).save(path); }, path, {"cannot create temp file"}));
  fs::permissions(dir.path(), fs::perms::owner_all);
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"model.safetensors"});
}

// A full disk, simulated with a file-size limit: write() fails with EFBIG part-way through.
TEST(Safetensors, SaveFailingMidWriteLeavesOldFileByteIdentical) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  big_writer(8).save(path);
  const std::string before = read_file(path);

  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // else the process is killed
  rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const auto result = fails_with([&] { big_writer(1 << 16).save(path); }, path, {"cannot write"});
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_TRUE(result);
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(SafetensorsFile::load(path).shape("x"), Shape{8});
}

}  // namespace
}  // namespace gradlens::nn

// A FIFO or a device as a model file is refused at once (it was opened first and waited on).
TEST(Safetensors, AFifoIsRefusedNotWaitedOn) {
  const std::filesystem::path dir = gradlens::testing::fresh_temp_dir("gradlens_st_fifo");
  const std::string fifo = (dir / "model.safetensors").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& path : {fifo, std::string("/dev/zero")}) {
    try {
      gradlens::nn::SafetensorsFile::load(path);
      ADD_FAILURE() << path << " loaded";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(path + ": not a regular file"), std::string::npos)
          << e.what();
    }
  }
}

// A model with a NaN or an infinite weight evaluated to "10.00 %" without a word: refused at load,
// naming the tensor, unless asked for.
TEST(Safetensors, LoadModelRefusesNonFiniteWeightsByName) {
  const std::filesystem::path dir = gradlens::testing::fresh_temp_dir("gradlens_st_nan");
  gradlens::nn::Net net(1);
  std::map<std::string, gradlens::Tensor> state = net.state_dict();
  for (const float bad : {std::nanf(""), -INFINITY}) {
    std::vector<float> w = state.at("fc2.bias").to_vector();
    w[3] = bad;
    state["fc2.bias"] = gradlens::Tensor::from_vector(w, state.at("fc2.bias").shape());
    const std::string path = (dir / "bad.safetensors").string();
    gradlens::nn::save_safetensors(path, state);
    gradlens::nn::Net target(2);
    try {
      gradlens::nn::load_model(target, path);
      ADD_FAILURE() << "loaded";
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("tensor 'fc2.bias' [84] has"), std::string::npos) << message;
      EXPECT_NE(message.find("at element 3"), std::string::npos) << message;
    }
    gradlens::nn::load_model(target, path, /*allow_nonfinite=*/true);
  }
}

// A model file's tensors are all F32: an F64 one was reported "missing", an extra I64 one ignored.
TEST(Safetensors, LoadModelNamesATensorOfAnotherDtype) {
  const std::filesystem::path dir = gradlens::testing::fresh_temp_dir("gradlens_st_dtype");
  gradlens::nn::Net net(1);
  for (const std::string dtype : {"F64", "I64"}) {
    gradlens::nn::SafetensorsWriter writer;
    for (const auto& [name, t] : net.state_dict()) {
      if (name == "fc3.bias" && dtype == "F64") {
        const std::vector<float> v = t.to_vector();
        writer.add_float64(name, std::vector<double>(v.begin(), v.end()), t.shape());
      } else {
        writer.add(name, t);
      }
    }
    if (dtype == "I64") writer.add_int64("step", {7}, {1});
    const std::string path = (dir / (dtype + ".safetensors")).string();
    writer.save(path);
    gradlens::nn::Net target(2);
    try {
      gradlens::nn::load_model(target, path);
      ADD_FAILURE() << dtype << " loaded";
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(
          what.find(dtype == "F64" ? "tensor 'fc3.bias' is F64 [10]" : "tensor 'step' is I64"),
          std::string::npos)
          << what;
    }
  }
}

// A large file that is not safetensors is refused from its first bytes, not read whole first.
// 1 under AddressSanitizer (GCC says so with a macro, Clang with __has_feature).
#if defined(__SANITIZE_ADDRESS__)
#define GRADLENS_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GRADLENS_TEST_ASAN 1
#endif
#endif
#ifndef GRADLENS_TEST_ASAN
#define GRADLENS_TEST_ASAN 0
#endif

TEST(Safetensors, ALargeNonSafetensorsFileIsRefusedBeforeItIsRead) {
  const std::filesystem::path dir = gradlens::testing::fresh_temp_dir("gradlens_st_sparse");
  const std::string path = (dir / "zeros.safetensors").string();
  {
    std::ofstream out(path, std::ios::binary);
    out.seekp((std::int64_t{4} << 30) - 1);  // a sparse 4 GiB of zeros: no disk, no time
    out.put('\0');
  }
  rlimit before{};
  ::getrlimit(RLIMIT_AS, &before);
  rlimit small = before;
  small.rlim_cur = std::int64_t{2} << 30;  // a whole read would need 4 GiB
#if !GRADLENS_TEST_ASAN  // ASan reserves far more address space than that up front
  ::setrlimit(RLIMIT_AS, &small);
#endif
  std::string message;
  try {
    gradlens::nn::SafetensorsFile::load(path);
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_AS, &before);
  EXPECT_NE(message.find("not a safetensors file"), std::string::npos) << message;
  std::filesystem::remove(path);
}
