// GRADLENS_API marks what a shared gradlens (-DBUILD_SHARED_LIBS=ON) exports: the public classes
// and functions. Everything else is hidden (built with -fvisibility=hidden), so a program cannot
// come to depend on the internals, and the libraries load faster. ELF only (GCC, Clang).
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define GRADLENS_API __attribute__((visibility("default")))
#else
#define GRADLENS_API
#endif
