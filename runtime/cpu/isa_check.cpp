// The check of runtime/cpu/isa_check.h. Compiled for the plain x86-64 baseline (runtime/CMakeLists.txt),
// with C library calls only, so it runs on any CPU whatever the rest of the build requires.
#include "runtime/cpu/isa_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

namespace {

// MOETRAIN_HIDE_CPU_FEATURES names `name` or "all" (a comma-separated list).
bool hidden(const char* name) {
  const char* list = getenv("MOETRAIN_HIDE_CPU_FEATURES");
  size_t n = strlen(name);
  for (const char* p = list; p && *p;) {
    const char* end = strchr(p, ',');
    size_t len = end ? size_t(end - p) : strlen(p);
    if ((len == n && strncmp(p, name, n) == 0) || (len == 3 && strncmp(p, "all", 3) == 0)) return true;
    p = end ? end + 1 : nullptr;
  }
  return false;
}

#if defined(__x86_64__)
// __builtin_cpu_supports wants its name as a literal: one entry per feature build_isa.cpp names.
struct Known {
  const char* name;
  int (*has)();
};
#define MT_FEATURE(n)                                   \
  {                                                     \
    n, [] { return __builtin_cpu_supports(n) ? 1 : 0; } \
  }
const Known kKnown[] = {
    MT_FEATURE("popcnt"),     MT_FEATURE("sse4.1"),       MT_FEATURE("sse4.2"),
    MT_FEATURE("avx"),        MT_FEATURE("avx2"),         MT_FEATURE("fma"),
    MT_FEATURE("f16c"),       MT_FEATURE("bmi"),          MT_FEATURE("bmi2"),
    MT_FEATURE("movbe"),      MT_FEATURE("avx512f"),      MT_FEATURE("avx512cd"),
    MT_FEATURE("avx512bw"),   MT_FEATURE("avx512dq"),     MT_FEATURE("avx512vl"),
    MT_FEATURE("avx512ifma"), MT_FEATURE("avx512vbmi"),   MT_FEATURE("avx512vbmi2"),
    MT_FEATURE("avx512vnni"), MT_FEATURE("avx512bitalg"), MT_FEATURE("avx512vpopcntdq"),
    MT_FEATURE("avx512bf16"), MT_FEATURE("avx512fp16"),   MT_FEATURE("avxvnni"),
    MT_FEATURE("amx-tile"),   MT_FEATURE("amx-bf16"),     MT_FEATURE("amx-int8"),
};
#undef MT_FEATURE

// Before every other static initialiser (priority 101, the first a program may use): they are
// compiled for the build's level and may already use what this CPU lacks.
__attribute__((constructor(101))) void check_build_isa() {
  __builtin_cpu_init();
  char missing[512];
  if (moetrain_missing_isa(moetrain_build_isa, moetrain_cpu_has, missing, sizeof missing) == 0) return;
  const char* march = moetrain_build_march;
  char text[1536];
  int n;
  if (strcmp(march, "native") == 0)
    n = snprintf(text, sizeof text,
                 "moetrain: this CPU lacks %s, which this build of moetrain uses throughout: it was compiled "
                 "with -march=native on another machine. Build it on this machine (make build), or build one "
                 "binary for all your machines: make build CMAKE_FLAGS=-DMOETRAIN_NATIVE=OFF (-march=x86-64-v3: "
                 "AVX2 and FMA; add -DMOETRAIN_PORTABLE_ARCH=x86-64 for any x86-64 CPU).\n",
                 missing);
  else
    n = snprintf(text, sizeof text,
                 "moetrain: this CPU lacks %s, which this build of moetrain uses throughout (-march=%s). "
                 "Build it for this CPU: make build CMAKE_FLAGS=-DMOETRAIN_NATIVE=ON on this machine, or "
                 "CMAKE_FLAGS=\"-DMOETRAIN_NATIVE=OFF -DMOETRAIN_PORTABLE_ARCH=x86-64\" for any x86-64 CPU.\n",
                 missing, march[0] ? march : "the compiler's default");
  if (n > 0) (void)!write(2, text, size_t(n) < sizeof text ? size_t(n) : sizeof text - 1);
  _exit(1);
}
#endif

}  // namespace

extern "C" int moetrain_missing_isa(const char* const* required, int (*has)(const char* name), char* out, size_t cap) {
  int count = 0;
  size_t used = 0;
  if (cap) out[0] = '\0';
  for (const char* const* r = required; *r; ++r) {
    if (has(*r)) continue;
    ++count;
    size_t len = strlen(*r) + (used ? 1 : 0);
    if (used + len + 1 > cap) continue;  // cut: the count still counts it
    if (used) out[used++] = ' ';
    memcpy(out + used, *r, strlen(*r) + 1);
    used += strlen(*r);
  }
  return count;
}

extern "C" int moetrain_cpu_has(const char* name) {
  if (hidden(name)) return 0;
#if defined(__x86_64__)
  for (const Known& k : kKnown)
    if (strcmp(k.name, name) == 0) return k.has();
#endif
  return 0;
}
