// The instruction sets this build of moetrain may use anywhere (its -march: native, or the
// portable build's x86-64-v3), checked against the running CPU before anything else runs. A binary
// built with -march=native on one machine and started on another that lacks some of it stops with
// a message naming what is missing and how to build for it, instead of an "Illegal instruction"
// somewhere in its static initialisation. (The kernels that use AVX-512, AVX512-BF16 and AMX beyond
// the build's level pick them at run time: runtime/cpu/cpu_features.h, attention_tile_gemm.h.)
//   runtime/cpu/build_isa.cpp  what the build's -march enables (compiled with it)
//   runtime/cpu/isa_check.cpp  the check: a constructor that runs before the other static
//                              initialisers, compiled for the plain x86-64 baseline (runs anywhere)
// C linkage and plain C inside: the check's file must not share inline code with the files built
// for the build's level (the linker would keep one copy of it, maybe the other one).
#pragma once

#include <cstddef>

extern "C" {

// What the build requires, nullptr-terminated, named as __builtin_cpu_supports spells them
// ("avx2", "avx512f", "amx-tile", ...); and its -march ("native", "x86-64-v3"; "" for the
// compiler's default).
extern const char* const moetrain_build_isa[];
extern const char moetrain_build_march[];

// Writes the names of `required` (nullptr-terminated) that has(name) denies into out, separated by
// spaces and NUL-terminated (cut at cap bytes); returns how many there are. Pure: tests pass a fake CPU.
int moetrain_missing_isa(const char* const* required, int (*has)(const char* name), char* out, size_t cap);

// 1 where the running CPU has the named feature, 0 where it lacks it or the name is not one the
// check knows; names in the environment's MOETRAIN_HIDE_CPU_FEATURES (comma-separated; "all": every
// one) count as lacking (tests: the check's message without an old CPU).
int moetrain_cpu_has(const char* name);
}
