// Tensor-parallel shards: each shard against a naive index formula, and merge(shards) == full,
// for plain and blocked (fused q,k,v) splits along every dimension, in several dtypes.
#include <catch2/catch.hpp>

#include "parallel/shards.h"

using namespace mt;
using parallel::ShardSpec;

namespace {
// full[i0, i1, i2] = 100 i0 + 10 i1 + i2 (exact in every dtype used here)
Tensor numbered(const Shape& shape, DType dtype) {
  std::vector<double> v;
  for (int64_t a = 0; a < shape[0]; ++a)
    for (int64_t b = 0; b < shape[1]; ++b)
      for (int64_t c = 0; c < shape[2]; ++c) v.push_back(double(100 * a + 10 * b + c));
  return Tensor::from_vector(v, shape).to(dtype);
}
}  // namespace

TEST_CASE("shards follow the blocked split and merge back to the full tensor", "[shards]") {
  for (DType dtype : {DType::F32, DType::F64, DType::BF16})
    for (int dim = 0; dim < 3; ++dim)
      for (int blocks : {1, 3}) {
        int parts = 2;
        Shape shape = {2, 3, 2};
        shape[size_t(dim)] = int64_t(blocks) * parts * 2;  // chunk 2
        Tensor full = numbered(shape, dtype);
        std::vector<Tensor> shards;
        for (int i = 0; i < parts; ++i) {
          Tensor s = parallel::shard_of(full, {dim, blocks}, i, parts);
          Shape want = shape;
          want[size_t(dim)] = int64_t(blocks) * 2;
          REQUIRE(s.shape() == want);
          // naive: shard index j along dim = block b, offset k -> full index (b * parts + i) * 2 + k
          std::vector<double> got = s.to_double_vector(), all = full.to_double_vector();
          int64_t n = 0;
          for (int64_t a = 0; a < want[0]; ++a)
            for (int64_t b = 0; b < want[1]; ++b)
              for (int64_t c = 0; c < want[2]; ++c, ++n) {
                int64_t idx[3] = {a, b, c};
                int64_t j = idx[dim];
                idx[dim] = (j / 2 * parts + i) * 2 + j % 2;
                REQUIRE(got[size_t(n)] == all[size_t((idx[0] * shape[1] + idx[1]) * shape[2] + idx[2])]);
              }
          shards.push_back(s);
        }
        REQUIRE(parallel::merge_shards(shards, {dim, blocks}).to_double_vector() == full.to_double_vector());
      }
}

TEST_CASE("shard errors name the shapes", "[shards][errors]") {
  Tensor full = Tensor::zeros({6, 4}, DType::F32);
  REQUIRE_THROWS_WITH(parallel::shard_of(full, {0, 3}, 0, 4),
                      Catch::Contains("dimension 0 of [6,4] (6) does not split into 3 blocks x 4 ranks"));
  REQUIRE_THROWS_WITH(parallel::shard_of(full, {2, 1}, 0, 2), Catch::Contains("out of range"));
  REQUIRE(parallel::shard_of(full, {-1, 1}, 1, 2).shape() == full.shape());  // replicated: the whole tensor
}
