// The CPU backend's tensor memory: blocks of 64 KiB and more are kept when freed and handed out
// again at the same (rounded) size, because glibc maps every block over 32 MiB afresh and the
// kernel zeroes its pages on first touch (a batch-1000 forward spent a fifth of its time in page
// faults), and its heaps give smaller ones back too: ResNet8's NoiseTunnel, whose 8-row chunks'
// activations are 128-512 KiB, took 232,000 page faults in 7 CPU seconds with only blocks of
// 1 MiB and more kept, 9,700 with these.
// Shared by every ISA variant; bounded (a quarter of the RAM available at the first large block,
// at most 1 GiB), and emptied before an allocation is given up as out of memory.
#pragma once

#include <cstddef>

namespace gradlens::cpu {

/// 64-byte aligned; throws OutOfMemoryError.
void* block_allocate(std::size_t bytes);
void block_free(void* ptr);
/// Bytes held in the cache, free for block_allocate to hand out.
std::size_t block_cache_bytes();

}  // namespace gradlens::cpu
