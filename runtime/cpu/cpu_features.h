// What this CPU offers for the bf16 and f32 kernels, found at run time (a build for one machine
// runs on the others): the model name and flags from /proc/cpuinfo, and whether the OS granted
// the AMX tile state (oneDNN's effective ISA: it asks Linux for the state and reports AMX only
// when granted). For logs and benchmarks, which must name the CPU of every figure.
#pragma once

#include <string>

namespace mt::cpu {

struct CpuFeatures {
  std::string model;  // "model name" ("" where /proc/cpuinfo has none)
  bool avx2 = false, avx512f = false, avx512_bf16 = false, amx_bf16 = false, amx_tile = false;
};

// The first processor's entry of a /proc/cpuinfo text (a pure function: tests feed it samples).
CpuFeatures parse_cpuinfo(const std::string& text);

// One line, e.g. "Intel(R) Xeon(R) Processor; avx2 avx512f avx512_bf16 amx_bf16 amx_tile; bf16
// units in use: AMX (the OS granted the tile state); build: -march=native". "In use" is what oneDNN
// reports (none without oneDNN); a CPU with AMX flags whose tile state the OS refused says so; the
// build's -march is the level the whole program was compiled for (runtime/cpu/isa_check.h).
std::string cpu_features_summary();

}  // namespace mt::cpu
