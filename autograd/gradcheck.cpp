#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "autograd/tape.h"
#include "runtime/rng.h"

namespace mt {
namespace {

double project(const Tensor& out, const std::vector<double>& r) {
  std::vector<double> v = out.to_double_vector();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * r[i];
  return s;
}

}  // namespace

std::string GradcheckResult::summary() const {
  std::ostringstream os;
  os << (ok ? "ok" : "FAILED") << ": " << entries_checked << " entries, max abs error " << max_abs_error
     << ", max rel error " << max_rel_error;
  if (entries_skipped) os << ", " << entries_skipped << " skipped (a routing decision would flip)";
  if (!worst.empty()) os << " (worst: " << worst << ")";
  return os.str();
}

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Variable>& inputs, const GradcheckOptions& options) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Variable& v = inputs[i];
    if (!v.requires_grad()) continue;
    MT_CHECK(v.dtype() == DType::F64 && v.device().is_cpu(), "gradcheck: input ", i, " ('", v.name(), "') is ",
             v.value().str(), " on ", v.device().str(), "; gradcheck needs f64 CPU tensors");
    if (v.grad().defined()) v.grad_ref().zero_();
  }

  // Analytic gradients: one backward with seed r.
  current_tape().clear();
  Variable out = fn(inputs);
  MT_CHECK(out.requires_grad(), "gradcheck: the function's output does not depend on any input requiring a gradient");
  int64_t n_out = out.value().numel();
  RngKey key{options.seed, 7};
  std::vector<double> r(static_cast<size_t>(n_out));
  for (int64_t i = 0; i < n_out; ++i) r[i] = 2.0 * uniform_at(key, uint64_t(i)) - 1.0;
  Tensor seed = Tensor::from_vector(r, out.shape()).to(out.dtype());
  current_tape().backward(out, &seed);

  GradcheckResult result;
  NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Variable& v = inputs[i];
    if (!v.requires_grad()) continue;
    std::vector<double> analytic =
        v.grad().defined() ? v.grad().to_double_vector() : std::vector<double>(size_t(v.value().numel()), 0.0);
    double* x = v.value().data<double>();
    int64_t n = v.value().numel();
    GradcheckInputReport report;
    report.name = v.name().empty() ? "input " + std::to_string(i) : v.name();
    std::vector<int64_t> entries;
    if (options.max_entries_per_input < 0 || options.max_entries_per_input >= n) {
      for (int64_t j = 0; j < n; ++j) entries.push_back(j);
    } else {
      RngKey pick{options.seed, 1000 + i};
      std::vector<int64_t> nonzero;
      if (options.prefer_nonzero)
        for (int64_t j = 0; j < n; ++j)
          if (analytic[size_t(j)] != 0.0) nonzero.push_back(j);
      for (int64_t j = 0; j < options.max_entries_per_input; ++j) {
        uint32_t u = philox4x32(pick, uint64_t(j)).v[0];
        entries.push_back(j % 2 == 0 && !nonzero.empty() ? nonzero[u % nonzero.size()] : int64_t(u % uint64_t(n)));
      }
    }
    for (int64_t j : entries) {
      double saved = x[j];
      x[j] = saved + options.eps;
      double plus = project(fn(inputs).value(), r);
      bool valid = !options.probe_valid || options.probe_valid();
      x[j] = saved - options.eps;
      double minus = project(fn(inputs).value(), r);
      valid = valid && (!options.probe_valid || options.probe_valid());
      x[j] = saved;
      if (!valid) {
        report.skipped++;
        result.entries_skipped++;
        continue;
      }
      double numeric = (plus - minus) / (2 * options.eps);
      double abs_err = std::fabs(analytic[j] - numeric);
      double rel_err = abs_err / std::max({std::fabs(analytic[j]), std::fabs(numeric), options.denom_floor});
      if (!std::isfinite(analytic[j]) || !std::isfinite(numeric)) abs_err = rel_err = INFINITY;  // NaN fails
      report.checked++;
      report.max_abs_error = std::max(report.max_abs_error, abs_err);
      if (report.worst_entry < 0 || rel_err > report.max_rel_error) {
        report.max_rel_error = rel_err;
        report.worst_entry = j;
        report.worst_analytic = analytic[j];
        report.worst_numeric = numeric;
      }
      result.entries_checked++;
      result.max_abs_error = std::max(result.max_abs_error, abs_err);
      if (rel_err > result.max_rel_error || result.worst.empty()) {
        result.max_rel_error = std::max(result.max_rel_error, rel_err);
        std::ostringstream os;
        os << "input " << i << (v.name().empty() ? "" : " '" + v.name() + "'") << " entry " << j << ": analytic "
           << analytic[j] << ", numeric " << numeric;
        result.worst = os.str();
      }
    }
    result.inputs.push_back(report);
  }
  result.ok = result.max_rel_error <= options.tolerance;
  return result;
}

}  // namespace mt
