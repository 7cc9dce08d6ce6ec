// Tensor: factories, views, dtype conversion, allocator accounting, errors.
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/allocator.h"
#include "runtime/cpu/stream_store.h"
#include "runtime/device.h"
#include "runtime/emulated_cuda.h"
#include "runtime/ops.h"
#include "runtime/random.h"
#include "runtime/tensor.h"

using namespace mt;

TEST_CASE("tensor factories and element access", "[runtime][tensor]") {
  Tensor z = Tensor::zeros({2, 3}, DType::F32);
  REQUIRE(z.numel() == 6);
  REQUIRE(z.dim() == 2);
  REQUIRE(z.size(-1) == 3);
  REQUIRE(z.str() == "f32[2,3]");
  for (double v : z.to_double_vector()) REQUIRE(v == 0.0);
  Tensor f = Tensor::full({4}, 2.5, DType::F64);
  REQUIRE(f.data<double>()[3] == 2.5);
  REQUIRE(Tensor::scalar(7, DType::I64).item() == 7.0);
  REQUIRE_THROWS_WITH(f.data<float>(), Catch::Contains("f64[4]") && Catch::Contains("f32"));
}

TEST_CASE("views share storage and cover contiguous ranges", "[runtime][tensor]") {
  std::vector<float> v(24);
  for (int i = 0; i < 24; ++i) v[i] = float(i);
  Tensor t = Tensor::from_vector(v, {2, 3, 4});
  Tensor r = t.reshape({6, -1});
  REQUIRE(r.shape() == Shape{6, 4});
  REQUIRE(r.same_storage(t));
  Tensor n = t.reshape({6, 4}).narrow(2, 3);  // rows 2..4
  REQUIRE(n.shape() == Shape{3, 4});
  REQUIRE(n.data<float>()[0] == 8.0f);
  Tensor s = t.select(1);  // [3,4] starting at element 12
  REQUIRE(s.shape() == Shape{3, 4});
  REQUIRE(s.data<float>()[5] == 17.0f);
  s.fill_(-1.0);
  REQUIRE(t.data<float>()[12] == -1.0f);
  REQUIRE(t.data<float>()[11] == 11.0f);
  REQUIRE(t.flatten_to_2d().shape() == Shape{6, 4});
  REQUIRE_THROWS_WITH(t.reshape({5, -1}), Catch::Contains("reshape of f32[2,3,4]"));
  REQUIRE_THROWS_WITH(t.narrow(1, 2), Catch::Contains("out of range"));
  REQUIRE_THROWS(t.select(2));
}

TEST_CASE("dtype conversions including bf16 round to nearest even", "[runtime][tensor]") {
  Tensor a = Tensor::from_vector(std::vector<double>{1.0, -2.5, 3.14159265358979, 1e-3, 65504.0}, {5});
  Tensor f = a.to(DType::F32);
  REQUIRE(f.data<float>()[2] == Approx(3.14159265f));
  Tensor b = a.to(DType::BF16);
  REQUIRE(b.nbytes() == 10);
  std::vector<double> back = b.to_double_vector();
  REQUIRE(back[0] == 1.0);
  REQUIRE(back[1] == -2.5);
  REQUIRE(back[2] == Approx(3.140625));  // 8 bits of mantissa
  REQUIRE(std::fabs(back[3] - 1e-3) < 1e-5);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: rounds to the even one, 1.
  REQUIRE(float(bf16(1.0f + 1.0f / 256)) == 1.0f);
  REQUIRE(float(bf16(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256);
  Tensor i = Tensor::from_vector(std::vector<double>{1.9, -3.0, 42.0}, {3}).to(DType::I32);
  REQUIRE(i.data<int32_t>()[0] == 1);
  REQUIRE(i.data<int32_t>()[2] == 42);
  REQUIRE(i.to(DType::I64).data<int64_t>()[1] == -3);
  REQUIRE(dtype_from_name("bf16") == DType::BF16);
  REQUIRE_THROWS_WITH(dtype_from_name("f8"), Catch::Contains("f32, f64, bf16, f16"));
}

// A conversion larger than the last-level cache streams its output past the caches
// (runtime/cpu/stream_store.h), a chunk at a time: the same values at every offset and length.
TEST_CASE("streamed dtype conversions equal plain ones at any alignment", "[runtime][tensor]") {
  Tensor f = rand_uniform({10007}, DType::F32, rng_key(21, 0, 0, 0), -3e4, 3e4);
  Tensor halves = f.to(DType::BF16);
  for (auto [from, to] : {std::pair{DType::F32, DType::BF16},
                          {DType::BF16, DType::F32},
                          {DType::F32, DType::F16},
                          {DType::F32, DType::F64},
                          {DType::F32, DType::I32}})
    for (int64_t start : {0, 1, 7})
      for (int64_t n : {1, 33, 4096, 10000}) {
        Tensor src = (from == DType::F32 ? f : halves).narrow(start, n);
        Tensor plain = Tensor::empty({n + 3}, to).narrow(3, n), streamed = Tensor::empty({n + 3}, to).narrow(3, n);
        plain.copy_from(src);
        cpu::set_streaming_threshold_for_tests(1);
        streamed.copy_from(src);
        cpu::set_streaming_threshold_for_tests(0);
        REQUIRE(streamed.to_double_vector() == plain.to_double_vector());
      }
}

TEST_CASE("round_through equals a round trip through the 16-bit dtype, bit for bit, in place too",
          "[runtime][tensor]") {
  // specials (NaNs with payloads, infinities, zeros, subnormals, bf16 and f16 ties, f16's overflow
  // edge) and random values over the whole exponent range, at unaligned starts
  std::vector<uint32_t> bits = {0x7fc00001u, 0xffa00000u, 0x7f800001u, 0x7f800000u, 0xff800000u, 0x00000000u,
                                0x80000000u, 0x00000001u, 0x807fffffu, 0x3f808000u, 0x3f818000u, 0x3f807fffu,
                                0x7f7fffffu, 0x477fefffu, 0x477ff000u, 0x33000000u, 0x33000001u, 0x387fe000u};
  std::mt19937 gen(7);
  while (bits.size() < 5000) bits.push_back(uint32_t(gen()));
  Tensor all = Tensor::empty({int64_t(bits.size())}, DType::F32);
  std::memcpy(all.raw(), bits.data(), bits.size() * 4);
  auto bits_of = [](const Tensor& t) {
    std::vector<uint32_t> b(size_t(t.numel()));
    std::memcpy(b.data(), t.raw(), b.size() * 4);
    return b;
  };
  for (DType lo : {DType::BF16, DType::F16})
    for (int64_t start : {0, 3}) {
      Tensor src = all.narrow(start, all.numel() - start);
      std::vector<uint32_t> want = bits_of(src.to(lo).to(DType::F32));
      Tensor out = Tensor::empty({src.numel()}, DType::F32);
      ops::round_through(src, lo, out);
      CHECK(bits_of(out) == want);
      Tensor in_place = src.clone();
      ops::round_through(in_place, lo, in_place);
      CHECK(bits_of(in_place) == want);
      Tensor held = ops::round_operand(src, lo);  // lo itself, or f32 where this CPU's GEMMs widen lo
      CHECK(held.dtype() == ops::rounded_operand_dtype(lo, Device::cpu()));
      CHECK(bits_of(held.to(DType::F32)) == want);
    }
  CHECK_THROWS_WITH(ops::round_through(all, DType::F64, all), Catch::Contains("a 16-bit lo"));
}

// The "THPeligible" line of /proc/self/smaps for the mapping holding p: 1, 0, or -1 where this
// kernel does not say.
int thp_eligible(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  auto at = reinterpret_cast<uintptr_t>(p);
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find('-') < 17) {
      inside = at >= lo && at < hi;
      continue;
    }
    if (inside && line.rfind("THPeligible:", 0) == 0) return std::atoi(line.c_str() + 12);
  }
  return -1;
}

TEST_CASE("host blocks from 2 MiB start on a 2 MiB boundary and ask for huge pages", "[runtime][allocator]") {
  std::unique_ptr<Allocator> a = make_host_allocator();
  const size_t huge = size_t(2) << 20;
  void* big = a->allocate(huge + 4096 + 100);
  void* small = a->allocate(huge - 64);
  REQUIRE(reinterpret_cast<uintptr_t>(big) % huge == 0);
  REQUIRE(reinterpret_cast<uintptr_t>(small) % 64 == 0);
  std::memset(big, 1, huge + 4096 + 100);  // all of it usable
  std::memset(small, 2, huge - 64);
  REQUIRE(static_cast<unsigned char*>(big)[huge + 4096 + 99] == 1);
  std::ifstream mode("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes((std::istreambuf_iterator<char>(mode)), std::istreambuf_iterator<char>());
  int eligible = thp_eligible(big);
  INFO("THP modes: " << modes << "; THPeligible of the block's mapping: " << eligible);
  if (!modes.empty() && modes.find("[never]") == std::string::npos && eligible >= 0) REQUIRE(eligible == 1);
  a->deallocate(big, huge + 4096 + 100);
  a->deallocate(small, huge - 64);
}

TEST_CASE("freed host blocks serve later requests of their size or up to 1/8 smaller", "[runtime][allocator]") {
  std::unique_ptr<Allocator> a = make_host_allocator();
  void* block = a->allocate(1000000);
  a->deallocate(block, 1000000);
  void* smaller = a->allocate(960000);  // within 1/8 below: the same block
  REQUIRE(smaller == block);
  REQUIRE(a->stats().live_bytes == 960000);
  a->deallocate(smaller, 960000);            // cached again as the 1000000-byte block it is
  void* much_smaller = a->allocate(800000);  // more than 1/8 below: a block of its own
  REQUIRE(much_smaller != block);
  void* again = a->allocate(1000000);
  REQUIRE(again == block);
  std::memset(again, 3, 1000000);
  a->deallocate(again, 1000000);
  a->deallocate(much_smaller, 800000);
  REQUIRE(a->stats().live_bytes == 0);
}

TEST_CASE("allocator counts live and peak bytes", "[runtime][allocator]") {
  Allocator& a = allocator_for(DeviceType::CPU);
  size_t before = a.stats().live_bytes;
  a.reset_peak();
  {
    Tensor t = Tensor::empty({1000}, DType::F64);
    REQUIRE(a.stats().live_bytes == before + 8000);
    REQUIRE(reinterpret_cast<uintptr_t>(t.raw()) % 64 == 0);
  }
  REQUIRE(a.stats().live_bytes == before);
  REQUIRE(a.stats().peak_bytes >= before + 8000);
  // Without the CUDA backend built, or without a GPU, a CUDA tensor is a clear error (unless a
  // test before this one in the same process emulates the device on the host)
  if (cuda_emulated()) return;
#if MOETRAIN_HAVE_CUDA
  const char* why = "no CUDA device is visible";
  if (cuda_device_count() > 0) return;
#else
  const char* why = "without that backend";
#endif
  REQUIRE_THROWS_WITH(allocator_for(DeviceType::CUDA), Catch::Contains(why));
  REQUIRE_THROWS_WITH(Tensor::empty({2}, DType::F32, Device::cuda()), Catch::Contains(why));
}
