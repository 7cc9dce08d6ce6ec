// What this build's -march lets the compiler use anywhere (runtime/cpu/isa_check.h): compiled
// with the build's flags, so the compiler's own macros say it.
#include "runtime/cpu/isa_check.h"

#ifndef MOETRAIN_BUILD_MARCH
#define MOETRAIN_BUILD_MARCH ""
#endif

extern "C" const char moetrain_build_march[] = MOETRAIN_BUILD_MARCH;

extern "C" const char* const moetrain_build_isa[] = {
#ifdef __POPCNT__
    "popcnt",
#endif
#ifdef __SSE4_1__
    "sse4.1",
#endif
#ifdef __SSE4_2__
    "sse4.2",
#endif
#ifdef __AVX__
    "avx",
#endif
#ifdef __AVX2__
    "avx2",
#endif
#ifdef __FMA__
    "fma",
#endif
#ifdef __F16C__
    "f16c",
#endif
#ifdef __BMI__
    "bmi",
#endif
#ifdef __BMI2__
    "bmi2",
#endif
#ifdef __MOVBE__
    "movbe",
#endif
#ifdef __AVX512F__
    "avx512f",
#endif
#ifdef __AVX512CD__
    "avx512cd",
#endif
#ifdef __AVX512BW__
    "avx512bw",
#endif
#ifdef __AVX512DQ__
    "avx512dq",
#endif
#ifdef __AVX512VL__
    "avx512vl",
#endif
#ifdef __AVX512IFMA__
    "avx512ifma",
#endif
#ifdef __AVX512VBMI__
    "avx512vbmi",
#endif
#ifdef __AVX512VBMI2__
    "avx512vbmi2",
#endif
#ifdef __AVX512VNNI__
    "avx512vnni",
#endif
#ifdef __AVX512BITALG__
    "avx512bitalg",
#endif
#ifdef __AVX512VPOPCNTDQ__
    "avx512vpopcntdq",
#endif
#ifdef __AVX512BF16__
    "avx512bf16",
#endif
#ifdef __AVX512FP16__
    "avx512fp16",
#endif
#ifdef __AVXVNNI__
    "avxvnni",
#endif
#ifdef __AMX_TILE__
    "amx-tile",
#endif
#ifdef __AMX_BF16__
    "amx-bf16",
#endif
#ifdef __AMX_INT8__
    "amx-int8",
#endif
    nullptr};
