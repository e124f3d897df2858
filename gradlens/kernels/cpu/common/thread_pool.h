// A small persistent thread pool for the CPU kernels. parallel_for splits a range into contiguous
// chunks that the caller and the workers claim one at a time; the split depends only on the range,
// the grain and the thread count, so per-chunk partials reduced in chunk order are reproducible.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace gradlens::cpu {

class ThreadPool {
 public:
  /// Chunks per thread: more than one lets the caller take over the work of a worker that the OS
  /// has descheduled (a busy machine) instead of waiting for it.
  static constexpr int kChunksPerThread = 4;

  /// threads <= 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Threads that run chunks, the calling thread included.
  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }
  /// Joins the workers and starts new ones; not to be called while kernels run.
  void set_num_threads(int threads);

  /// Whether a parallel_for called now runs its chunks in turn on this thread (a call from
  /// within a chunk).
  static bool runs_inline();

  /// Chunks that parallel_for / parallel_chunks use for this range: at most kChunksPerThread *
  /// num_threads(), each of at least `grain` items (so 1 when the range is under twice the grain).
  int chunk_count(std::int64_t begin, std::int64_t end, std::int64_t grain) const;

  /// fn(chunk_begin, chunk_end) over [begin, end); one chunk runs inline with no hand-off.
  template <class Fn>
  void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t grain, Fn&& fn) {
    parallel_chunks(begin, end, grain, [&fn](int, std::int64_t b, std::int64_t e) { fn(b, e); });
  }

  /// fn(chunk_index, chunk_begin, chunk_end), chunk_index in [0, chunk_count(begin, end, grain)).
  /// Any thread may run any chunk: results must depend only on the chunk index.
  template <class Fn>
  void parallel_chunks(std::int64_t begin, std::int64_t end, std::int64_t grain, Fn&& fn) {
    const int chunks = chunk_count(begin, end, grain);
    if (chunks <= 0) return;
    if (chunks == 1) {
      fn(0, begin, end);
      return;
    }
    using F = std::remove_reference_t<Fn>;
    run(
        [](void* ctx, int chunk, std::int64_t b, std::int64_t e) {
          (*static_cast<F*>(ctx))(chunk, b, e);
        },
        const_cast<void*>(static_cast<const void*>(&fn)),
        begin,
        end,
        chunks);
  }

  /// [begin, end) of chunk `index` out of `chunks` (sizes differ by at most one).
  static std::pair<std::int64_t, std::int64_t> chunk_range(std::int64_t begin,
                                                           std::int64_t end,
                                                           int chunks,
                                                           int index);

 private:
  using Task = void (*)(void* ctx, int chunk, std::int64_t b, std::int64_t e);

  void run(Task task, void* ctx, std::int64_t begin, std::int64_t end, int chunks);
  void start(int threads);
  void stop();
  void worker_loop(std::uint32_t seen);
  // Claims and runs chunks of the job tagged `generation` until none is left.
  void run_chunks(std::uint32_t generation);

  // The current job; written only by the caller holding run_mutex_, while no chunk is claimed.
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  std::int64_t begin_ = 0, end_ = 0;
  // generation (32 bits) | chunk count (16) | next unclaimed chunk (16): one CAS claims a chunk
  // of the right job, so a worker waking late can never touch the next job's fields.
  std::atomic<std::uint64_t> state_{0};
  std::atomic<int> finished_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stopping_{false};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one parallel region at a time; other callers run their chunks inline
};

/// The process-wide pool behind set_num_threads() / num_threads().
ThreadPool& thread_pool();

}  // namespace gradlens::cpu
