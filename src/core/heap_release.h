#pragma once
// Hands the C allocator's free memory back to the operating system. glibc keeps the pages of
// freed blocks resident until something trims them, so after a burst a server would sit on what
// the burst left free; on the soak's workload a release at idle gives back about 1 MiB of 25.
// (What it cannot give back is each thread's tcache, glibc's small per-thread cache of freed
// blocks: with 17 server threads it fills up over the first minutes of a soak and makes idle RSS
// creep by ~3 MiB before it levels off; with GLIBC_TUNABLES=glibc.malloc.tcache_count=0 idle RSS
// stays flat from the first cycle.)

namespace morphserve {

// Trims every allocator arena (glibc's malloc_trim(0)). Returns whether anything was released;
// false where the C library has no such call. Takes milliseconds: call it when idle, not per request.
bool release_free_heap_memory();

}  // namespace morphserve
