#include "train/distillation.h"

#include "autograd/autocast.h"
#include "autograd/tape.h"
#include "train/checkpoint.h"
#include "train/checkpoint_folder.h"
#include "train/model_config.h"

namespace mt::train {
namespace {

// "num_layers 4, hidden_size 128, ..." of a configuration: what a mismatch error shows.
std::string shape_keys(const TrainConfig& c) {
  std::string experts;
  for (const std::string& e : c.num_experts) experts += (experts.empty() ? "" : " ") + e;
  return "num_layers " + std::to_string(c.num_layers) + ", hidden_size " + std::to_string(c.hidden_size) +
         ", num_attention_heads " + std::to_string(c.num_attention_heads) + ", ffn_hidden_size " +
         std::to_string(c.ffn_size()) + ", num_experts [" + experts + "], mlp_type " + c.mlp_type;
}

}  // namespace

Teacher::Teacher(const TrainConfig& student, int64_t vocab_size, const ParallelSetup& setup, int rank) {
  TrainConfig tc = teacher_config(student);
  try {
    checkpoint_ = find_checkpoint(student.load_teacher, true).checkpoint;
  } catch (const Error& e) {
    throw Error(std::string("load_teacher: ") + e.what());
  }
  MT_CHECK(!checkpoint_.empty(), "load_teacher '", student.load_teacher,
           "' holds no checkpoint: train the teacher first (its save folder, or one of its iter_* folders)");
  nn::GptConfig mc = model_config(tc, vocab_size, setup.tensor_group);
  mc.frozen = true;
  model_ = std::make_unique<nn::GptModel>(mc, feed_forward_factory(tc, mc, setup.expert_group), tc.moe_loss_coeff);
  try {
    load_checkpoint(checkpoint_, model_->parameters(), nullptr, checkpoint_layout(setup.layout, setup.groups, rank));
  } catch (const Error& e) {
    std::string saved;
    try {
      saved = shape_keys(load_config_file(checkpoint_config_path(checkpoint_)));
    } catch (const Error&) {
      saved = "unreadable";
    }
    throw Error(std::string("the teacher does not fit its checkpoint: ") + e.what() + "; the teacher keys give " +
                shape_keys(tc) + ", the checkpoint's config.yaml has " + saved +
                " (set num_layers_teacher, hidden_size_teacher, num_attention_heads_teacher, "
                "ffn_hidden_size_teacher, num_experts_teacher, mlp_type_teacher to match)");
  }
}

Tensor Teacher::logits(const Tensor& tokens) const {
  NoGradGuard no_grad;
  ag::FullPrecision f32;  // the teacher's logits in f32 whatever the student's precision (docs/precision.md)
  return model_->vocab_logits(tokens, {false, 0}).value();
}

void init_student_from_teacher(ParameterRegistry& student, const ParameterRegistry& teacher,
                               const std::vector<std::string>& layers) {
  for (const Parameter& p : student.all()) {
    std::string name = p.name;
    if (name.rfind("layers.", 0) == 0) {  // layers.<i>.rest -> layers.<layers[i]>.rest
      size_t dot = name.find('.', 7);
      size_t i = size_t(std::stoll(name.substr(7, dot - 7)));
      MT_CHECK(i < layers.size(), "student_init_from_teacher_layers names ", layers.size(),
               " layers but the student has layer ", i);
      name = "layers." + layers[i] + name.substr(dot);
    }
    MT_CHECK(teacher.contains(name), "student_init_from_teacher_layers: the student's '", p.name,
             "' would come from the teacher's '", name, "', which the teacher does not have (a dense layer where ",
             "the student has an MoE layer, or a different expert count?)");
    const Parameter& t = teacher.get(name);
    MT_CHECK(t.var.shape() == p.var.shape(), "student_init_from_teacher_layers: the student's '", p.name, "' is ",
             p.var.value().str(), " but the teacher's '", name, "' is ", t.var.value().str());
    Tensor into = p.var.value();  // a view on the student's storage
    into.copy_from(t.var.value());
  }
}

}  // namespace mt::train
