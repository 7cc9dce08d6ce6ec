#include "runtime/cpu/cpu_features.h"

#include <fstream>
#include <sstream>

#include "runtime/cpu/gemm_bf16.h"
#include "runtime/cpu/isa_check.h"

namespace mt::cpu {
namespace {

// "key<tabs>: value" -> value, for the line starting with `key`; false for other lines.
bool field(const std::string& line, const std::string& key, std::string* value) {
  if (line.rfind(key, 0) != 0) return false;
  size_t colon = line.find(':');
  if (colon == std::string::npos || line.find_first_not_of(" \t", key.size()) != colon) return false;
  size_t start = line.find_first_not_of(" \t", colon + 1);
  *value = start == std::string::npos ? "" : line.substr(start);
  return true;
}

bool have_onednn() {
#if MOETRAIN_HAVE_DNNL
  return true;
#else
  return false;
#endif
}

}  // namespace

CpuFeatures parse_cpuinfo(const std::string& text) {
  CpuFeatures f;
  bool have_model = false, have_flags = false;
  std::istringstream in(text);
  for (std::string line, value; std::getline(in, line) && !(have_model && have_flags);) {
    if (!have_model && field(line, "model name", &value)) {
      f.model = value;
      have_model = true;
    } else if (!have_flags && field(line, "flags", &value)) {
      std::istringstream words(value);
      for (std::string w; words >> w;) {
        f.avx2 |= w == "avx2";
        f.avx512f |= w == "avx512f";
        f.avx512_bf16 |= w == "avx512_bf16";
        f.amx_bf16 |= w == "amx_bf16";
        f.amx_tile |= w == "amx_tile";
      }
      have_flags = true;
    }
  }
  return f;
}

std::string cpu_features_summary() {
  std::ifstream file("/proc/cpuinfo");
  std::stringstream text;
  text << file.rdbuf();
  CpuFeatures f = parse_cpuinfo(text.str());
  std::string flags;
  for (auto [on, name] :
       {std::pair{f.avx2, "avx2"}, std::pair{f.avx512f, "avx512f"}, std::pair{f.avx512_bf16, "avx512_bf16"},
        std::pair{f.amx_bf16, "amx_bf16"}, std::pair{f.amx_tile, "amx_tile"}})
    if (on) flags += std::string(flags.empty() ? "" : " ") + name;
  std::string line =
      (f.model.empty() ? "unknown CPU" : f.model) + "; " + (flags.empty() ? "no AVX2/AVX-512/AMX" : flags);
  Bf16Units units = bf16_units();
  line += units == Bf16Units::Amx          ? "; bf16 units in use: AMX (the OS granted the tile state)"
          : units == Bf16Units::Avx512Bf16 ? "; bf16 units in use: AVX512-BF16"
                                           : "; bf16 units in use: none";
  if (f.amx_tile && units != Bf16Units::Amx)
    line += have_onednn() ? " (AMX tile state not granted by the OS)" : " (built without oneDNN)";
  line += std::string("; build: -march=") + (moetrain_build_march[0] ? moetrain_build_march : "(compiler default)");
  return line;
}

}  // namespace mt::cpu
