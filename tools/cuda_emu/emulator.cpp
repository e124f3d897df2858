// The fiber scheduler and runtime calls behind cuda_runtime.h. One block at a time: its threads
// are fibers on one OS thread, run in a seeded random order; a fiber runs until it waits at a
// barrier or ends the block, and a barrier opens when every live thread of its scope (block, or
// warp for shuffles) waits at it. Shared memory starts as NaN bytes in every block.
// The fibers of a launch are made once and run block after block; on x86-64 they switch by
// saving six registers (ucontext's swapcontext costs a signal-mask syscall per switch, which made
// shuffle-heavy kernels 20x slower), elsewhere through ucontext.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_runtime.h"

#if defined(__x86_64__)
// emu_switch(save, next): saves the callee-saved registers and the stack pointer into *save, then
// continues where `next` was saved (or starts a fresh fiber stack prepared by start_frame).
extern "C" void emu_switch(void** save, void* next);
asm(R"(
  .text
  .p2align 4
  .globl emu_switch
  .hidden emu_switch
  .type emu_switch, @function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emu_switch, .-emu_switch
)");
#else
#include <ucontext.h>
#endif

namespace emu {
namespace {

// Ready: may run; AtBlock/AtWarp: waits at a barrier; Finished: done with the current block.
enum class State { Ready, AtBlock, AtWarp, Finished };

struct Context {
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
};

struct Fiber {
  Context context;
  char* stack = nullptr;
  dim3 index;
  int linear = 0;
  State state = State::Ready;
};

// Bytes every block's shared memory starts as: all-ones floats are NaN.
constexpr unsigned char kSharedPoison = 0xff;
constexpr std::size_t kSharedLimit = 48 * 1024;  // static + dynamic, as on the GPU by default

struct Block {
  dim3 block_idx, block_dim, grid_dim;
  std::vector<Fiber> fibers;
  std::vector<float> exchange;  // one slot per thread, for the shuffles
  std::vector<char> shared;     // dynamic (extern __shared__)
  std::vector<char> arena;      // static __shared__ arrays, sized once so references stay valid
  std::vector<std::pair<const void*, std::size_t>> slots;  // declaration tag -> arena offset
  std::size_t arena_used = 0;
  const std::function<void()>* body = nullptr;
  Context scheduler;
  Fiber* current = nullptr;
};

thread_local Block* active = nullptr;
// Fiber stacks, kept across launches (allocating 256 of them per launch would dominate).
thread_local std::vector<std::unique_ptr<char[]>> stacks;
thread_local cudaError_t last_error = cudaSuccess;
constexpr std::size_t kStackBytes = 128 * 1024;

void switch_context(Context& save, Context& next) {
#if defined(__x86_64__)
  emu_switch(&save.sp, next.sp);
#else
  swapcontext(&save.uc, &next.uc);
#endif
}

Fiber& me() {
  if (active == nullptr || active->current == nullptr) {
    throw std::logic_error("[cuda-emu] a device built-in was used outside a kernel");
  }
  return *active->current;
}

void wait(State state) {
  Fiber& f = me();
  f.state = state;
  switch_context(f.context, active->scheduler);
}

// A fiber's whole life: the kernel body once per block of the launch, then parked (its stack is
// reused by the next launch; nothing on it needs unwinding).
[[noreturn]] void fiber_main() {
  for (;;) {
    (*active->body)();
    wait(State::Finished);
  }
}

void start_frame(Fiber& f) {
#if defined(__x86_64__)
  // What emu_switch pops: six registers, then fiber_main as the return address, placed so that
  // fiber_main starts with the stack alignment of a called function (rsp = 8 mod 16).
  auto top = reinterpret_cast<std::uintptr_t>(f.stack + kStackBytes) & ~std::uintptr_t{15};
  auto* frame = reinterpret_cast<void**>(top - 16);
  frame[0] = reinterpret_cast<void*>(&fiber_main);
  frame -= 6;
  std::memset(frame, 0, 6 * sizeof(void*));
  f.context.sp = frame;
#else
  getcontext(&f.context.uc);
  f.context.uc.uc_stack.ss_sp = f.stack;
  f.context.uc.uc_stack.ss_size = kStackBytes;
  f.context.uc.uc_link = nullptr;
  makecontext(&f.context.uc, reinterpret_cast<void (*)()>(&fiber_main), 0);
#endif
}

// GRADLENS_EMU_SEED: the seed of the thread order within a block (default 1); 0 runs threads in
// index order.
std::uint32_t schedule_seed() {
  static const std::uint32_t seed = [] {
    const char* v = std::getenv("GRADLENS_EMU_SEED");
    return v != nullptr && *v != '\0' ? static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10))
                                      : 1u;
  }();
  return seed;
}

std::mt19937& schedule_rng() {
  thread_local std::mt19937 rng(schedule_seed());
  return rng;
}

// Opens the barriers every live thread of their scope waits at; false when none can open.
bool release(Block& b) {
  bool all_at_block = true, any_live = false;
  for (const Fiber& f : b.fibers) {
    if (f.state == State::Finished) continue;
    any_live = true;
    if (f.state != State::AtBlock) all_at_block = false;
  }
  if (!any_live) return false;
  if (all_at_block) {
    for (Fiber& f : b.fibers) {
      if (f.state == State::AtBlock) f.state = State::Ready;
    }
    return true;
  }
  bool released = false;
  const std::size_t n = b.fibers.size();
  for (std::size_t w = 0; w < n; w += 32) {
    bool all_at_warp = true, live = false;
    for (std::size_t i = w; i < std::min(n, w + 32); ++i) {
      const State s = b.fibers[i].state;
      if (s == State::Finished) continue;
      live = true;
      if (s != State::AtWarp) all_at_warp = false;
    }
    if (live && all_at_warp) {
      for (std::size_t i = w; i < std::min(n, w + 32); ++i) {
        if (b.fibers[i].state == State::AtWarp) b.fibers[i].state = State::Ready;
      }
      released = true;
    }
  }
  return released;
}

}  // namespace

const dim3& thread_idx() { return me().index; }
const dim3& block_idx() { return active->block_idx; }
const dim3& block_dim() { return active->block_dim; }
const dim3& grid_dim() { return active->grid_dim; }
int lane() { return me().linear % 32; }
void sync_block() { wait(State::AtBlock); }
void* dynamic_shared_bytes() { return active->shared.data(); }

void* block_shared_bytes(const void* tag, std::size_t bytes) {
  Block& b = *active;
  for (const auto& [t, offset] : b.slots) {
    if (t == tag) return b.arena.data() + offset;
  }
  const std::size_t offset = (b.arena_used + 15) / 16 * 16;
  if (offset + bytes + b.shared.size() > kSharedLimit + 16) {
    throw std::runtime_error("[cuda-emu] static and dynamic shared memory exceed 48 KiB");
  }
  b.slots.emplace_back(tag, offset);
  b.arena_used = offset + bytes;
  return b.arena.data() + offset;
}

float shfl(float value, int src_lane) {
  Fiber& f = me();
  const int warp_base = f.linear - f.linear % 32;
  active->exchange[static_cast<std::size_t>(f.linear)] = value;
  wait(State::AtWarp);  // every lane has written
  const float got =
      src_lane < 0 ? value : active->exchange[static_cast<std::size_t>(warp_base + src_lane)];
  wait(State::AtWarp);  // every lane has read before anyone writes again
  return got;
}

void run_grid(dim3 grid, dim3 block_dim, std::size_t shared, const std::function<void()>& body) {
  const std::size_t threads = std::size_t{block_dim.x} * block_dim.y * block_dim.z;
  if (threads == 0 || threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.y > 65535 || grid.z > 65535 || shared > kSharedLimit) {
    last_error = cudaErrorInvalidValue;
    return;
  }
  Block b;
  b.block_dim = block_dim;
  b.grid_dim = grid;
  b.body = &body;
  b.fibers.resize(threads);
  b.exchange.assign(threads, 0.f);
  b.shared.assign(shared + 16, 0);
  b.arena.assign(kSharedLimit, 0);
  std::vector<std::size_t> order(threads);
  for (std::size_t t = 0; t < threads; ++t) order[t] = t;
  std::mt19937& rng = schedule_rng();
  while (stacks.size() < threads) stacks.emplace_back(new char[kStackBytes]);
  for (std::size_t t = 0; t < threads; ++t) {
    b.fibers[t].stack = stacks[t].get();
    b.fibers[t].linear = static_cast<int>(t);
    b.fibers[t].index = dim3(static_cast<unsigned>(t % block_dim.x),
                             static_cast<unsigned>(t / block_dim.x % block_dim.y),
                             static_cast<unsigned>(t / (block_dim.x * block_dim.y)));
  }
  for (Fiber& f : b.fibers) start_frame(f);
  Block* outer = active;
  active = &b;
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        b.block_idx = dim3(x, y, z);
        std::memset(b.shared.data(), kSharedPoison, b.shared.size());
        std::memset(b.arena.data(), kSharedPoison, b.arena.size());
        for (Fiber& f : b.fibers) f.state = State::Ready;
        for (;;) {
          bool ran = false;
          // Between two barriers the threads run in a fresh random order each time (seeded), so a
          // result that depends on the order threads happen to run in differs between seeds.
          if (schedule_seed() != 0) std::shuffle(order.begin(), order.end(), rng);
          for (std::size_t t : order) {
            Fiber& f = b.fibers[t];
            if (f.state != State::Ready) continue;
            b.current = &f;
            switch_context(b.scheduler, f.context);
            b.current = nullptr;
            ran = true;
          }
          if (ran) continue;
          if (release(b)) continue;
          bool done = true;
          for (const Fiber& f : b.fibers) done = done && f.state == State::Finished;
          if (done) break;
          active = outer;
          throw std::runtime_error(
              "[cuda-emu] deadlock: the threads of a block wait at different barriers");
        }
      }
    }
  }
  active = outer;
}

}  // namespace emu

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return emu::last_error = cudaErrorInvalidValue;
  *prop = {};
  std::snprintf(prop->name, sizeof(prop->name), "gradlens CUDA emulator (CPU)");
  prop->major = 9;
  prop->totalGlobalMem = std::size_t{4} << 30;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* version) {
  *version = 0;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
  // A fake 4 GiB device: larger requests fail like a real out-of-memory.
  if (bytes > (std::size_t{4} << 30)) return emu::last_error = cudaErrorMemoryAllocation;
  *ptr = std::malloc(bytes);
  return *ptr != nullptr ? cudaSuccess : (emu::last_error = cudaErrorMemoryAllocation);
}
cudaError_t cudaFree(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(
    void* dst, const void* src, std::size_t bytes, cudaMemcpyKind, cudaStream_t) {
  if (bytes != 0) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  *stream = nullptr;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaGetLastError() {
  const cudaError_t e = emu::last_error;
  emu::last_error = cudaSuccess;
  return e;
}
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  *free_bytes = std::size_t{2} << 30;
  *total_bytes = std::size_t{4} << 30;
  return cudaSuccess;
}
const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidValue:
      return "invalid argument";
    default:
      return "unspecified launch failure";
  }
}
