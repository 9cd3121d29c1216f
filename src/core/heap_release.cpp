#include "core/heap_release.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace morphserve {

bool release_free_heap_memory() {
#if defined(__GLIBC__)
  return malloc_trim(0) != 0;
#else
  return false;
#endif
}

}  // namespace morphserve
