#include "moe/expert_dispatcher.h"

#include "moe/moe_ops.h"
#include "parallel/collective_ops.h"

namespace mt::moe {
namespace {

class LocalDispatcher final : public ExpertDispatcher {
 public:
  explicit LocalDispatcher(int64_t hidden) : hidden_(hidden) {}
  std::vector<Variable> to_experts(const Variable& rows, const std::vector<int64_t>& counts) override {
    return split_rows(rows, counts);
  }
  Variable from_experts(const std::vector<Variable>& outputs) override { return concat_rows(outputs, hidden_); }

 private:
  int64_t hidden_;
};

// rows [N, h] expert-major over all E experts (counts c_e):
//   1. rank j of the group gets the contiguous rows of its experts: send[j] = sum of their c_e;
//      the counts themselves go first (all_to_all of [E] -> [ep, L]: from source s, expert l).
//   2. received rows are source-major; regroup them expert-major so each local expert runs
//      once over the tokens of every source; from_experts undoes the regrouping and sends the
//      outputs back.
class AllToAllDispatcher final : public ExpertDispatcher {
 public:
  AllToAllDispatcher(parallel::Communicator& group, int64_t local, int64_t hidden)
      : group_(group), ep_(group.size()), local_(local), hidden_(hidden) {}

  std::vector<Variable> to_experts(const Variable& rows, const std::vector<int64_t>& counts) override {
    send_.assign(size_t(ep_), 0);
    recv_.assign(size_t(ep_), 0);
    Tensor my_counts = Tensor::empty({int64_t(counts.size())}, DType::I64);
    for (size_t e = 0; e < counts.size(); ++e) {
      send_[e / size_t(local_)] += counts[e];
      my_counts.data<int64_t>()[e] = counts[e];
    }
    Tensor their_counts = Tensor::empty(my_counts.shape(), DType::I64);
    group_.all_to_all(my_counts, their_counts);
    block_rows_.assign(their_counts.data<int64_t>(), their_counts.data<int64_t>() + ep_ * local_);
    for (int64_t s = 0; s < ep_; ++s)
      for (int64_t l = 0; l < local_; ++l) recv_[size_t(s)] += block_rows_[size_t(s * local_ + l)];

    Variable received = parallel::all_to_all_v(rows, send_, recv_, group_);
    std::vector<Variable> by_source = split_rows(received, block_rows_);  // [s * local + l]
    std::vector<Variable> per_expert;
    for (int64_t l = 0; l < local_; ++l) {
      std::vector<Variable> parts;
      for (int64_t s = 0; s < ep_; ++s) parts.push_back(by_source[size_t(s * local_ + l)]);
      per_expert.push_back(concat_rows(parts, hidden_));
    }
    return per_expert;
  }

  Variable from_experts(const std::vector<Variable>& outputs) override {
    std::vector<Variable> back(size_t(ep_ * local_));
    for (int64_t l = 0; l < local_; ++l) {
      std::vector<int64_t> sizes;
      for (int64_t s = 0; s < ep_; ++s) sizes.push_back(block_rows_[size_t(s * local_ + l)]);
      std::vector<Variable> parts = split_rows(outputs[size_t(l)], sizes);
      for (int64_t s = 0; s < ep_; ++s) back[size_t(s * local_ + l)] = parts[size_t(s)];
    }
    return parallel::all_to_all_v(concat_rows(back, hidden_), recv_, send_, group_);
  }

 private:
  parallel::Communicator& group_;
  int64_t ep_, local_, hidden_;
  std::vector<int64_t> send_, recv_, block_rows_;  // of the call's to_experts
};

}  // namespace

std::unique_ptr<ExpertDispatcher> make_expert_dispatcher(parallel::Communicator* group, int64_t local_experts,
                                                         int64_t hidden) {
  if (!group) return std::make_unique<LocalDispatcher>(hidden);
  return std::make_unique<AllToAllDispatcher>(*group, local_experts, hidden);
}

}  // namespace mt::moe
