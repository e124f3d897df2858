// CIFAR-10 reader, ToTensor + Normalize and DataLoader: the real test batch from ../shared/cifar10,
// malformed copies written to a temporary directory, and the loader on a small synthetic split.
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "gradlens/data/cifar10.h"
#include "gradlens/data/dataloader.h"
#include "gradlens/data/fetch.h"
#include "gradlens/data/transforms.h"
#include "tests/testing.h"

namespace gradlens::data {
namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "gradlens-test-data-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<char> read_bytes(const std::string& path, std::size_t max_bytes = SIZE_MAX) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes(std::min<std::size_t>(fs::file_size(path), max_bytes));
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// EXPECT_THROW that also checks the message contains every one of `parts`.
template <class Exception, class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const Exception& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "'" << part << "' not in: " << e.what();
    }
  }
}

TEST(Cifar10, TestBatchHasTenThousandImagesAndTheTutorialsFirstLabels) {
  GRADLENS_SHARED_FILE(path, "cifar10/test_batch.bin");
  const CifarSplit test = load_cifar10_file(path);
  ASSERT_EQ(test.size(), 10000);
  EXPECT_EQ(test.images.size(), 10000u * 3072u);
  const std::vector<std::int64_t> first(test.labels.begin(), test.labels.begin() + 10);
  EXPECT_EQ(first, (std::vector<std::int64_t>{3, 8, 8, 0, 6, 6, 1, 6, 3, 1}));
  EXPECT_EQ(kCifarClassNames[test.labels[0]], "cat");
  EXPECT_EQ(kCifarClassNames[test.labels[1]], "ship");
  EXPECT_EQ(kCifarClassNames[test.labels[2]], "ship");
  EXPECT_EQ(kCifarClassNames[test.labels[3]], "plane");
  // The first image's top-left pixel, as the file stores it (R, G and B planes).
  EXPECT_EQ(test.image(0)[0], 158);
  EXPECT_EQ(test.image(0)[1024], 112);
  EXPECT_EQ(test.image(0)[2048], 49);

  const CifarSplit same = load_cifar10(fs::path(path).parent_path().string(), /*train=*/false);
  EXPECT_EQ(same.labels, test.labels);
  EXPECT_EQ(same.images, test.images);
}

TEST(Cifar10, TestBatchHasTheOfficialMd5) {
  GRADLENS_SHARED_FILE(path, "cifar10/test_batch.bin");
  EXPECT_EQ(md5_file(path), "803d5f7f4d78ea53de84dbe85f74fb6d");
}

TEST(Cifar10, TrainSplitIsTheFiveBatchesInOrder) {
  GRADLENS_SHARED_FILE(path, "cifar10/data_batch_1.bin");
  const std::string dir = fs::path(path).parent_path().string();
  const CifarSplit train = load_cifar10(dir, /*train=*/true);
  ASSERT_EQ(train.size(), 50000);
  EXPECT_EQ(train.labels[0], 6);      // frog
  EXPECT_EQ(train.labels[10000], 1);  // data_batch_2's first record: automobile
  const CifarSplit batch5 = load_cifar10_file(dir + "/data_batch_5.bin");
  EXPECT_TRUE(std::equal(batch5.labels.begin(), batch5.labels.end(), train.labels.begin() + 40000));
  EXPECT_TRUE(
      std::equal(batch5.images.begin(), batch5.images.end(), train.images.begin() + 40000 * 3072));
  // Every class has 5,000 images; channel means on the 0-255 scale are about (125.3, 123.0, 113.9).
  std::vector<int> counts(10);
  for (std::int64_t label : train.labels) ++counts[static_cast<std::size_t>(label)];
  EXPECT_EQ(counts, std::vector<int>(10, 5000));
  double sums[3] = {0, 0, 0};
  for (std::int64_t i = 0; i < train.size(); ++i) {
    for (int c = 0; c < 3; ++c) {
      for (int p = 0; p < 1024; ++p) sums[c] += train.image(i)[c * 1024 + p];
    }
  }
  EXPECT_NEAR(sums[0] / (50000.0 * 1024), 125.3, 0.1);
  EXPECT_NEAR(sums[1] / (50000.0 * 1024), 123.0, 0.1);
  EXPECT_NEAR(sums[2] / (50000.0 * 1024), 113.9, 0.1);
}

TEST(Cifar10, TruncatedFileNamesTheFileAndTheSizes) {
  GRADLENS_SHARED_FILE(path, "cifar10/test_batch.bin");
  TempDir tmp;
  write_bytes(tmp.file("test_batch.bin"), read_bytes(path, 30729000));
  expect_error<std::runtime_error>(
      [&] { load_cifar10_file(tmp.file("test_batch.bin")); },
      {"[cifar10] " + tmp.file("test_batch.bin"), "30729000 bytes, expected 30730000"});
  expect_error<std::runtime_error>([&] { load_cifar10(tmp.path().string(), false); },
                                   {tmp.file("test_batch.bin"), "30729000 bytes"});
}

TEST(Cifar10, OtherNamesTakeAnyWholeNumberOfRecords) {
  GRADLENS_SHARED_FILE(path, "cifar10/test_batch.bin");
  TempDir tmp;
  write_bytes(tmp.file("small.bin"), read_bytes(path, 3 * 3073));
  const CifarSplit small = load_cifar10_file(tmp.file("small.bin"));
  EXPECT_EQ(small.labels, (std::vector<std::int64_t>{3, 8, 8}));
  write_bytes(tmp.file("ragged.bin"), read_bytes(path, 3 * 3073 + 5));
  expect_error<std::runtime_error>([&] { load_cifar10_file(tmp.file("ragged.bin")); },
                                   {tmp.file("ragged.bin"), "9224 bytes", "multiple of 3073"});
  write_bytes(tmp.file("empty.bin"), {});
  expect_error<std::runtime_error>([&] { load_cifar10_file(tmp.file("empty.bin")); },
                                   {tmp.file("empty.bin"), "0 bytes"});
}

TEST(Cifar10, LabelAboveNineNamesTheFileAndTheRecord) {
  GRADLENS_SHARED_FILE(path, "cifar10/test_batch.bin");
  TempDir tmp;
  std::vector<char> bytes = read_bytes(path);
  bytes[7 * 3073] = 12;
  write_bytes(tmp.file("test_batch.bin"), bytes);
  expect_error<std::runtime_error>([&] { load_cifar10_file(tmp.file("test_batch.bin")); },
                                   {tmp.file("test_batch.bin"), "record 7", "label 12"});
}

TEST(Cifar10, MissingDirectoryOrFileIsNamed) {
  TempDir tmp;
  expect_error<std::runtime_error>([&] { load_cifar10(tmp.file("nope"), true); },
                                   {tmp.file("nope"), "no such directory", "gradlens data fetch"});
  expect_error<std::runtime_error>([&] { load_cifar10(tmp.path().string(), true); },
                                   {tmp.file("data_batch_1.bin"), "no such file"});
  expect_error<std::runtime_error>([&] { load_cifar10(tmp.path().string(), false); },
                                   {tmp.file("test_batch.bin"), "no such file"});
  expect_error<std::runtime_error>([&] { load_cifar10_file(tmp.file("x.bin")); },
                                   {tmp.file("x.bin"), "no such file"});
  // A link loop is not "no such file" (nor a reason to fetch).
  std::filesystem::create_symlink(tmp.file("loop"), tmp.file("loop"));
  expect_error<std::runtime_error>([&] { load_cifar10(tmp.file("loop"), false); },
                                   {tmp.file("loop"), "Too many levels of symbolic links"});
  std::filesystem::create_symlink(tmp.file("test_batch.bin"), tmp.file("test_batch.bin"));
  expect_error<std::runtime_error>([&] { load_cifar10(tmp.path().string(), false); },
                                   {tmp.file("test_batch.bin"), "Too many levels"});
}

TEST(Normalize, IsBitIdenticalToTorchvisionInFloat32) {
  // torchvision: ToTensor = img.float().div(255); Normalize = (x - mean) / std, all float32.
  for (int v = 0; v < 256; ++v) {
    volatile float x = static_cast<float>(v);
    x = x / 255.f;
    x = x - 0.5f;
    x = x / 0.5f;
    EXPECT_EQ(std::bit_cast<std::uint32_t>(kTutorialNormalize(static_cast<std::uint8_t>(v), v % 3)),
              std::bit_cast<std::uint32_t>(static_cast<float>(x)))
        << v;
  }
  EXPECT_EQ(kTutorialNormalize(0, 0), -1.f);
  EXPECT_EQ(kTutorialNormalize(255, 2), 1.f);
  const Normalize other{{0.4914f, 0.4822f, 0.4465f}, {0.247f, 0.243f, 0.261f}};
  EXPECT_EQ(other(100, 1), (100.f / 255.f - 0.4822f) / 0.243f);
}

TEST(Normalize, KnownPixelOfTheFirstTestImage) {
  GRADLENS_SHARED_FILE(path, "cifar10/test_batch.bin");
  const CifarSplit test = load_cifar10_file(path);
  const std::vector<std::int64_t> idx = {1, 0};
  const Tensor x = to_normalized_tensor(test, idx);
  ASSERT_EQ(x.shape(), (Shape{2, 3, 32, 32}));
  const std::vector<float> v = x.to_vector();
  const float* cat = v.data() + 3072;  // second row: image 0
  // Bytes 158, 112, 49: (158 / 255 - 0.5) / 0.5 = 0.2392157 (0x3e74f4f8), as PyTorch prints.
  EXPECT_EQ(std::bit_cast<std::uint32_t>(cat[0]), 0x3e74f4f8u) << cat[0];
  EXPECT_EQ(std::bit_cast<std::uint32_t>(cat[1024]), 0xbdf8f8f8u) << cat[1024];
  EXPECT_EQ(std::bit_cast<std::uint32_t>(cat[2048]), 0xbf1d9d9eu) << cat[2048];
  EXPECT_EQ(cat[1 * 32 + 2], kTutorialNormalize(test.image(0)[1 * 32 + 2], 0));
  const std::vector<std::int64_t> bad = {10000};
  EXPECT_THROW(to_normalized_tensor(test, bad), std::invalid_argument);
}

// A synthetic split: image i has every byte (i * 7 + plane offset) % 256, label i % 10.
CifarSplit synthetic_split(std::int64_t n) {
  CifarSplit split;
  for (std::int64_t i = 0; i < n; ++i) {
    split.labels.push_back(i % 10);
    for (std::int64_t b = 0; b < kCifarImageBytes; ++b) {
      split.images.push_back(static_cast<std::uint8_t>((i * 7 + b / 1024 * 50 + b % 13) % 256));
    }
  }
  return split;
}

std::vector<std::vector<std::int64_t>> epoch_indices(DataLoader& loader) {
  std::vector<std::vector<std::int64_t>> batches;
  loader.start_epoch();
  for (Batch batch; loader.next(batch);) batches.push_back(batch.indices);
  return batches;
}

TEST(DataLoader, EveryIndexAppearsOncePerEpoch) {
  const CifarSplit split = synthetic_split(103);
  DataLoader loader(split, 8, /*shuffle=*/true, /*seed=*/1);
  EXPECT_EQ(loader.batches_per_epoch(), 13);
  for (int epoch = 0; epoch < 3; ++epoch) {
    loader.start_epoch();
    std::vector<std::int64_t> seen;
    std::int64_t batches = 0;
    for (Batch batch; loader.next(batch); ++batches) {
      const std::int64_t b = static_cast<std::int64_t>(batch.indices.size());
      EXPECT_EQ(b, batches < 12 ? 8 : 7);
      ASSERT_EQ(batch.images.shape(), (Shape{b, 3, 32, 32}));
      ASSERT_EQ(batch.labels.size(), batch.indices.size());
      for (std::size_t k = 0; k < batch.indices.size(); ++k) {
        EXPECT_EQ(batch.labels[k], split.labels[static_cast<std::size_t>(batch.indices[k])]);
      }
      const std::vector<float> expected = to_normalized_tensor(split, batch.indices).to_vector();
      EXPECT_EQ(batch.images.to_vector(), expected);
      seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
    }
    EXPECT_EQ(batches, 13);
    std::sort(seen.begin(), seen.end());
    std::vector<std::int64_t> all(103);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(seen, all) << "epoch " << epoch;
  }
}

TEST(DataLoader, DropLastAndNoShuffle) {
  const CifarSplit split = synthetic_split(103);
  DataLoader loader(split, 8, /*shuffle=*/false, /*seed=*/1, /*drop_last=*/true);
  EXPECT_EQ(loader.batches_per_epoch(), 12);
  const auto batches = epoch_indices(loader);
  ASSERT_EQ(batches.size(), 12u);
  std::vector<std::int64_t> flat;
  for (const auto& b : batches) {
    EXPECT_EQ(b.size(), 8u);
    flat.insert(flat.end(), b.begin(), b.end());
  }
  std::vector<std::int64_t> first96(96);
  std::iota(first96.begin(), first96.end(), 0);
  EXPECT_EQ(flat, first96);
}

TEST(DataLoader, SameSeedSameOrderOtherSeedOtherOrder) {
  const CifarSplit split = synthetic_split(50);
  DataLoader a(split, 5, true, 7), b(split, 5, true, 7), c(split, 5, true, 8);
  const auto a0 = epoch_indices(a), a1 = epoch_indices(a);
  const auto b0 = epoch_indices(b), b1 = epoch_indices(b);
  const auto c0 = epoch_indices(c);
  EXPECT_EQ(a0, b0);
  EXPECT_EQ(a1, b1);
  EXPECT_NE(a0, a1);  // each epoch draws a fresh permutation from the continued stream
  EXPECT_NE(a0, c0);
}

TEST(DataLoader, OrderIsPinnedForAGivenSeed) {
  // Fisher-Yates over std::mt19937_64 with a rejection-sampled bound: the same on every platform.
  const CifarSplit split = synthetic_split(10);
  DataLoader loader(split, 10, true, 42);
  loader.start_epoch();
  const std::vector<std::int64_t> order = loader.order();
  std::vector<std::int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(order, (std::vector<std::int64_t>{1, 7, 9, 0, 3, 8, 4, 2, 5, 6}));
}

TEST(DataLoader, PrefetchGivesTheSameBatchesAsASynchronousPass) {
  const CifarSplit split = synthetic_split(37);
  DataLoaderOptions options{.batch_size = 4, .shuffle = true, .seed = 3};
  DataLoader background(split, options);
  options.prefetch = false;
  DataLoader inline_loader(split, options);
  for (int epoch = 0; epoch < 3; ++epoch) {
    background.start_epoch();
    inline_loader.start_epoch();
    Batch x, y;
    while (true) {
      const bool more = background.next(x);
      ASSERT_EQ(more, inline_loader.next(y));
      if (!more) break;
      EXPECT_EQ(x.indices, y.indices);
      EXPECT_EQ(x.labels, y.labels);
      EXPECT_EQ(x.images.to_vector(), y.images.to_vector());
    }
  }
}

TEST(DataLoader, AbandonedEpochsKeepTheStreamAndShutDownCleanly) {
  const CifarSplit split = synthetic_split(40);
  DataLoader full(split, 4, true, 5), partial(split, 4, true, 5);
  const auto e0 = epoch_indices(full), e1 = epoch_indices(full), e2 = epoch_indices(full);
  Batch batch;
  ASSERT_TRUE(partial.next(batch));  // the first next() starts epoch 0 by itself
  EXPECT_EQ(batch.indices, e0[0]);
  partial.start_epoch();  // abandons epoch 0 with batch 1 in flight
  ASSERT_TRUE(partial.next(batch));
  EXPECT_EQ(batch.indices, e1[0]);
  partial.start_epoch();  // abandons epoch 1 right after a request
  EXPECT_EQ(epoch_indices(partial), epoch_indices(full)) << "epoch 3";
  (void)e2;
  for (int i = 0; i < 200; ++i) {  // destroyed mid-epoch, with a batch being prepared
    DataLoader loader(split, 1, true, static_cast<std::uint64_t>(i));
    for (int k = 0; k < i % 4; ++k) loader.next(batch);
    if (i % 3 == 0) loader.start_epoch();
  }
}

TEST(DataLoader, EpochEndsUntilTheNextStartAndRejectsBadBatchSize) {
  const CifarSplit split = synthetic_split(6);
  DataLoader loader(split, 4, false, 0);
  Batch batch;
  EXPECT_TRUE(loader.next(batch));
  EXPECT_TRUE(loader.next(batch));
  EXPECT_EQ(batch.indices, (std::vector<std::int64_t>{4, 5}));
  EXPECT_FALSE(loader.next(batch));
  EXPECT_FALSE(loader.next(batch));
  loader.start_epoch();
  EXPECT_TRUE(loader.next(batch));
  EXPECT_EQ(loader.epochs_started(), 2);
  EXPECT_THROW(DataLoader(split, 0, true, 0), std::invalid_argument);
  const CifarSplit empty;
  DataLoader none(empty, 4, true, 0);
  EXPECT_EQ(none.batches_per_epoch(), 0);
  EXPECT_FALSE(none.next(batch));
}

// A checkpoint's position, restored into a fresh loader, continues with the same batches: at the
// start, mid-epoch, at an epoch's end, with and without prefetching.
TEST(DataLoader, RestoredPositionContinuesWithTheSameBatches) {
  const CifarSplit split = synthetic_split(23);
  for (const bool prefetch : {true, false}) {
    const DataLoaderOptions options{
        .batch_size = 4, .shuffle = true, .seed = 9, .prefetch = prefetch};
    for (const std::int64_t taken : {0, 1, 5, 6, 7, 13}) {  // 6 batches an epoch
      DataLoader original(split, options);
      Batch batch;
      for (std::int64_t k = 0; k < taken; ++k) {
        if (k > 0 && k % 6 == 0) original.start_epoch();
        ASSERT_TRUE(original.next(batch));
      }
      DataLoader restored(split, options);
      restored.restore(original.position());
      EXPECT_EQ(restored.epochs_started(), original.epochs_started());
      for (int k = 0; k < 14; ++k) {
        Batch a, b;
        const bool more = original.next(a);
        ASSERT_EQ(more, restored.next(b)) << "taken " << taken << ", then " << k;
        if (!more) {
          original.start_epoch();
          restored.start_epoch();
          continue;
        }
        EXPECT_EQ(a.indices, b.indices) << "taken " << taken << ", then " << k;
        EXPECT_EQ(a.images.to_vector(), b.images.to_vector());
      }
    }
  }
  DataLoader loader(split, 4, true, 0);
  EXPECT_THROW(loader.restore({.epochs_started = 1, .next_batch = 0, .generator = "not a state"}),
               std::invalid_argument);
  LoaderPosition past_the_end = loader.position();
  past_the_end.next_batch = 7;
  EXPECT_THROW(loader.restore(past_the_end), std::invalid_argument);
}

}  // namespace
}  // namespace gradlens::data
