// The training data loader (Megatron's MegatronPretrainingSampler, --dataloader-type single):
// global sample indices are consumed in order from `consumed_samples`; every call takes the next
// micro_batch * dp_size indices and data-parallel rank r gets the slice
// [r * micro_batch, (r + 1) * micro_batch). Resuming from a checkpoint's consumed-samples count
// gives exactly the batches an uninterrupted run would have seen.
#pragma once

#include <memory>

#include "data/gpt_dataset.h"
#include "runtime/tensor.h"

namespace mt::data {

struct MicroBatch {
  Tensor tokens;             // i32 [micro_batch, seq_length + 1]: inputs = [:, :L], labels = [:, 1:]
  Tensor loss_mask;          // f32 [micro_batch, seq_length]: 0 where the input token is EOD (eod_mask_loss)
  int64_t first_sample = 0;  // global index of this rank's first sample
};

struct LoaderOptions {
  int64_t micro_batch = 1, dp_size = 1, dp_rank = 0;
  int64_t consumed_samples = 0;
  bool eod_mask_loss = false;
  int32_t eod = 50256;
  int64_t vocab_size = 0;  // > 0: every token id must be below it (else a clear error, not an embedding's)
};

class GptLoader {
 public:
  GptLoader(std::shared_ptr<const SampleDataset> dataset, LoaderOptions options);
  MicroBatch next();
  int64_t consumed_samples() const { return consumed_; }
  // Micro-batch steps left before the dataset runs out.
  int64_t remaining_steps() const;

 private:
  std::shared_ptr<const SampleDataset> dataset_;
  LoaderOptions opt_;
  int64_t consumed_;
};

}  // namespace mt::data
