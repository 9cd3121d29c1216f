#pragma once
// Whether this build runs under AddressSanitizer (GCC says so with __SANITIZE_ADDRESS__, clang
// with __has_feature). RSS checks need to know: ASan's quarantine keeps freed memory resident.
#if defined(__SANITIZE_ADDRESS__)
#define MORPHSERVE_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MORPHSERVE_UNDER_ASAN 1
#endif
#endif
#ifndef MORPHSERVE_UNDER_ASAN
#define MORPHSERVE_UNDER_ASAN 0
#endif
