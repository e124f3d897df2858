// The CPU backend's tensor memory: large blocks are kept when freed and handed out again at the
// same (rounded) size, because glibc maps every block over 32 MiB afresh and the kernel zeroes
// its pages on first touch: a batch-1000 forward spent a fifth of its time in page faults.
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
