#include "data/loader.h"

#include <algorithm>

#include "runtime/error.h"

namespace mt::data {

GptLoader::GptLoader(std::shared_ptr<const SampleDataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), opt_(options), consumed_(options.consumed_samples) {
  MT_CHECK(dataset_, "data loader: no dataset");
  MT_CHECK(opt_.micro_batch > 0 && opt_.dp_size > 0 && opt_.dp_rank >= 0 && opt_.dp_rank < opt_.dp_size,
           "data loader: micro_batch (", opt_.micro_batch, ") and dp_size (", opt_.dp_size,
           ") must be positive and the rank (", opt_.dp_rank, ") in [0, dp_size)");
  MT_CHECK(consumed_ >= 0, "data loader: consumed_samples must not be negative, got ", consumed_);
}

int64_t GptLoader::remaining_steps() const {
  return std::max<int64_t>(0, (dataset_->size() - consumed_) / (opt_.micro_batch * opt_.dp_size));
}

MicroBatch GptLoader::next() {
  int64_t step = opt_.micro_batch * opt_.dp_size;
  MT_CHECK(consumed_ + step <= dataset_->size(), "data loader: the dataset has ", dataset_->size(), " samples and ",
           consumed_, " are consumed; the next step needs ", step,
           " more (build it for more samples: train_iters x global_batch_size)");
  int64_t l = dataset_->seq_length();
  MicroBatch mb;
  mb.first_sample = consumed_ + opt_.dp_rank * opt_.micro_batch;
  mb.tokens = Tensor::empty({opt_.micro_batch, l + 1}, DType::I32);
  mb.loss_mask = Tensor::full({opt_.micro_batch, l}, 1.0, DType::F32);
  int32_t* tok = mb.tokens.data<int32_t>();
  float* mask = mb.loss_mask.data<float>();
  std::vector<int64_t> sample;
  for (int64_t b = 0; b < opt_.micro_batch; ++b) {
    sample.clear();
    dataset_->sample(mb.first_sample + b, sample);
    MT_CHECK(int64_t(sample.size()) == l + 1, "data loader: sample ", mb.first_sample + b, " has ", sample.size(),
             " tokens, expected ", l + 1);
    for (int64_t t = 0; t <= l; ++t) {
      int64_t id = sample[size_t(t)];
      MT_CHECK(opt_.vocab_size <= 0 || id < opt_.vocab_size, "data: sample ", mb.first_sample + b, " holds token id ",
               id, ", but the tokenizer has ", opt_.vocab_size,
               " ids: the dataset was made with another tokenizer (or is damaged); re-create it with `moetrain "
               "preprocess` and this run's --vocab-file/--merge-file");
      tok[b * (l + 1) + t] = int32_t(id);
    }
    if (opt_.eod_mask_loss)
      for (int64_t t = 0; t < l; ++t)
        if (sample[size_t(t)] == opt_.eod) mask[b * l + t] = 0.0f;
  }
  consumed_ += step;
  return mb;
}

}  // namespace mt::data
