// ThreadPool: one job at a time, published through state_. Idle workers spin on state_ for a while
// (back-to-back kernels hand off in well under a microsecond), then sleep on a condition variable.
// The caller claims chunks too, so a descheduled worker delays only the chunk it already holds.
#include "gradlens/kernels/cpu/common/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace gradlens::cpu {
namespace {

// How long an idle worker keeps spinning before it sleeps: longer than the serial gap between two
// kernels of a training step, short enough not to matter when the process goes idle.
constexpr auto kSpinTime = std::chrono::microseconds(2000);

// Nested parallel_for (a chunk calling a parallel kernel) runs inline.
thread_local bool tl_in_parallel_region = false;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

constexpr std::uint32_t generation_of(std::uint64_t state) {
  return static_cast<std::uint32_t>(state >> 32);
}
constexpr int chunks_of(std::uint64_t state) { return static_cast<int>((state >> 16) & 0xffff); }
constexpr int next_of(std::uint64_t state) { return static_cast<int>(state & 0xffff); }

}  // namespace

ThreadPool::ThreadPool(int threads) { start(threads); }

ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::set_num_threads(int threads) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  stop();
  start(threads);
}

void ThreadPool::start(int threads) {
  if (threads <= 0) {
    // GRADLENS_NUM_THREADS sets the default (benchmarks pin both sides to the same count).
    const char* env = std::getenv("GRADLENS_NUM_THREADS");
    threads = env ? std::atoi(env) : 0;
    if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  }
  threads = std::clamp(threads, 1, 1024);
  stopping_.store(false);
  // Each worker waits past the generation current now, before any job it should see is published.
  const std::uint32_t generation = generation_of(state_.load());
  for (int i = 1; i < threads; ++i) {
    workers_.emplace_back([this, generation] { worker_loop(generation); });
  }
}

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    stopping_.store(true);
    // A new generation with no chunks wakes the spinners; they then see stopping_.
    const std::uint64_t s = state_.load();
    state_.store(static_cast<std::uint64_t>(generation_of(s) + 1) << 32);
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
}

bool ThreadPool::runs_inline() { return tl_in_parallel_region; }

int ThreadPool::chunk_count(std::int64_t begin, std::int64_t end, std::int64_t grain) const {
  const std::int64_t n = end - begin;
  if (n <= 0) return 0;
  grain = std::max<std::int64_t>(grain, 1);
  const std::int64_t by_grain = std::max<std::int64_t>(n / grain, 1);
  const std::int64_t cap = num_threads() == 1 ? 1 : std::int64_t{kChunksPerThread} * num_threads();
  return static_cast<int>(std::min({by_grain, cap, std::int64_t{0xffff}}));
}

std::pair<std::int64_t, std::int64_t> ThreadPool::chunk_range(std::int64_t begin,
                                                              std::int64_t end,
                                                              int chunks,
                                                              int index) {
  const std::int64_t n = end - begin, base = n / chunks, extra = n % chunks;
  const std::int64_t lo = begin + index * base + std::min<std::int64_t>(index, extra);
  return {lo, lo + base + (index < extra ? 1 : 0)};
}

void ThreadPool::run_chunks(std::uint32_t generation) {
  std::uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if (generation_of(s) != generation || next_of(s) >= chunks_of(s)) return;
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) continue;
    // Chunk next_of(s) is ours: the caller cannot publish another job before we report it done.
    const int chunk = next_of(s);
    const auto [b, e] = chunk_range(begin_, end_, chunks_of(s), chunk);
    task_(ctx_, chunk, b, e);
    finished_.fetch_add(1, std::memory_order_acq_rel);
    s = state_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run(Task task, void* ctx, std::int64_t begin, std::int64_t end, int chunks) {
  std::unique_lock<std::mutex> lock(run_mutex_, std::defer_lock);
  // Same chunks, run in order on this thread: results do not depend on whether the pool was free.
  if (tl_in_parallel_region || workers_.empty() || !lock.try_lock()) {
    for (int i = 0; i < chunks; ++i) {
      const auto [b, e] = chunk_range(begin, end, chunks, i);
      task(ctx, i, b, e);
    }
    return;
  }
  task_ = task;
  ctx_ = ctx;
  begin_ = begin;
  end_ = end;
  finished_.store(0, std::memory_order_relaxed);
  const std::uint32_t generation = generation_of(state_.load(std::memory_order_relaxed)) + 1;
  state_.store(static_cast<std::uint64_t>(generation) << 32 | static_cast<std::uint64_t>(chunks)
                                                                  << 16,
               std::memory_order_seq_cst);
  // Dekker pairing with the worker's sleepers_ increment + state_ load, both seq_cst.
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> guard(sleep_mutex_); }
    wake_.notify_all();
  }
  tl_in_parallel_region = true;
  run_chunks(generation);
  tl_in_parallel_region = false;
  for (int spins = 0; finished_.load(std::memory_order_acquire) < chunks; ++spins) {
    if (spins < 4096) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::worker_loop(std::uint32_t seen) {
  tl_in_parallel_region = true;
  for (;;) {
    auto spin_start = std::chrono::steady_clock::now();
    std::uint32_t now = seen;
    for (unsigned spins = 1;; ++spins) {
      now = generation_of(state_.load(std::memory_order_acquire));
      if (now != seen) break;
      cpu_relax();
      if ((spins & 255) == 0 && std::chrono::steady_clock::now() - spin_start > kSpinTime) {
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        wake_.wait(lock, [&] {
          return generation_of(state_.load(std::memory_order_seq_cst)) != seen || stopping_.load();
        });
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
        spin_start = std::chrono::steady_clock::now();
      }
    }
    seen = now;
    if (stopping_.load(std::memory_order_acquire)) return;
    run_chunks(now);
  }
}

ThreadPool& thread_pool() {
  static ThreadPool pool;
  return pool;
}

}  // namespace gradlens::cpu
