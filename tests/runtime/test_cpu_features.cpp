// The CPU's features as the runtime finds them (runtime/cpu/cpu_features.h): /proc/cpuinfo texts of
// the project's machines (an AMX Xeon, an AMD Zen 4, an older AVX2 CPU) and one without the fields.
#include <catch2/catch.hpp>

#include "runtime/cpu/cpu_features.h"
#include "runtime/cpu/isa_check.h"

using namespace mt;

namespace {

// Two processors of a Sapphire Rapids VM; the parser reads the first entry.
const char* kXeon =
    "processor\t: 0\n"
    "vendor_id\t: GenuineIntel\n"
    "model name\t: Intel(R) Xeon(R) Processor\n"
    "flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512dq avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8\n"
    "\n"
    "processor\t: 1\n"
    "model name\t: Intel(R) Xeon(R) Processor\n"
    "flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512dq avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8\n";

const char* kZen4 =
    "processor\t: 0\n"
    "model name\t: AMD EPYC 9354 32-Core Processor\n"
    "flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n";

const char* kHaswell =
    "processor\t: 0\n"
    "model name\t: Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz\n"
    "flags\t\t: fpu sse2 avx avx2 fma\n"
    "bugs\t\t: cpu_meltdown avx512f_like_name\n";

}  // namespace

TEST_CASE("cpu features: the model name and the bf16 flags from cpuinfo texts", "[runtime][cpu_features][bf16]") {
  cpu::CpuFeatures xeon = cpu::parse_cpuinfo(kXeon);
  CHECK(xeon.model == "Intel(R) Xeon(R) Processor");
  CHECK((xeon.avx2 && xeon.avx512f && xeon.avx512_bf16 && xeon.amx_bf16 && xeon.amx_tile));

  cpu::CpuFeatures zen = cpu::parse_cpuinfo(kZen4);
  CHECK(zen.model == "AMD EPYC 9354 32-Core Processor");
  CHECK((zen.avx2 && zen.avx512f && zen.avx512_bf16));
  CHECK((!zen.amx_bf16 && !zen.amx_tile));

  cpu::CpuFeatures old = cpu::parse_cpuinfo(kHaswell);  // whole words only, from "flags" only
  CHECK(old.avx2);
  CHECK((!old.avx512f && !old.avx512_bf16 && !old.amx_tile));

  cpu::CpuFeatures none = cpu::parse_cpuinfo("processor : 0\nCPU implementer : 0x41\n");  // e.g. an ARM board
  CHECK(none.model.empty());
  CHECK((!none.avx2 && !none.amx_tile));
}

TEST_CASE("cpu features: the summary names this machine's CPU and the bf16 units in use",
          "[runtime][cpu_features][bf16]") {
  std::string line = cpu::cpu_features_summary();
  INFO(line);
  CHECK(line.find("bf16 units in use: ") != std::string::npos);
  CHECK(line.find("; build: -march=") != std::string::npos);
  CHECK(line.find('\n') == std::string::npos);
}

namespace {
int fake_cpu(const char* name) {  // a CPU with AVX2 and FMA, nothing of AVX-512
  return std::string(name) == "avx2" || std::string(name) == "fma";
}
}  // namespace

TEST_CASE("isa check: the build's features this CPU lacks, and the running CPU has the build's",
          "[runtime][cpu_features]") {
  const char* const required[] = {"avx2", "avx512f", "fma", "amx-tile", nullptr};
  char out[64];
  CHECK(moetrain_missing_isa(required, fake_cpu, out, sizeof out) == 2);
  CHECK(std::string(out) == "avx512f amx-tile");
  char small[10];  // cut where the text would not fit: still counted
  CHECK(moetrain_missing_isa(required, fake_cpu, small, sizeof small) == 2);
  CHECK(std::string(small) == "avx512f");
  const char* const none[] = {nullptr};
  CHECK(moetrain_missing_isa(none, fake_cpu, out, sizeof out) == 0);
  CHECK(std::string(out).empty());
  // This process started, so the machine has what its build requires: the check agrees.
  CHECK(moetrain_missing_isa(moetrain_build_isa, moetrain_cpu_has, out, sizeof out) == 0);
  CHECK(moetrain_cpu_has("no-such-feature") == 0);
#if defined(__AVX2__)
  CHECK(moetrain_cpu_has("avx2") == 1);
  CHECK(std::string(moetrain_build_isa[0]).size() > 0);
#endif
}
