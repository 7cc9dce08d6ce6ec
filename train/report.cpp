#include "train/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/error.h"

namespace mt::train {
namespace fs = std::filesystem;
namespace {

constexpr double kWidth = 560, kHeight = 300, kLeft = 64, kRight = 16, kTop = 34, kBottom = 40;
const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string num(double v) {  // compact, round-trippable enough for a chart and its data-values
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

// Tick values: about five round numbers covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  if (!(hi > lo)) return {lo};
  double step = std::pow(10.0, std::floor(std::log10((hi - lo) / 4)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if ((hi - lo) / (step * m) <= 5) {
      step *= m;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) t.push_back(v);
  return t;
}

}  // namespace

RunMetrics read_run_metrics(const std::string& run_dir) {
  RunMetrics m;
  m.name = fs::path(run_dir).filename().string();
  if (m.name.empty()) m.name = fs::path(run_dir).parent_path().filename().string();
  fs::path file = fs::path(run_dir) / "metrics.jsonl";
  std::ifstream in(file);
  MT_CHECK(in, "report: no metrics in '", run_dir, "' (expected ", file.string(), ", which training writes)");
  std::map<int64_t, size_t> layer_index;
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      continue;  // a line cut by a kill
    }
    double it = j.value("iteration", 0.0);
    std::string split = j.value("split", "");
    if (split == "valid") {
      m.valid_loss.push_back({it, j.value("lm_loss", 0.0)});
    } else if (split == "tasks") {
      m.zero_shot.clear();
      for (const auto& [k, v] : j.items())
        if (v.is_number() && k != "iteration" && k != "consumed_tokens") m.zero_shot.push_back({k, v.get<double>()});
    } else if (split == "train") {
      m.train_loss.push_back({it, j.value("lm_loss", 0.0)});
      m.lr.push_back({it, j.value("lr", 0.0)});
      m.grad_norm.push_back({it, j.value("grad_norm", 0.0)});
      m.tokens_per_s.push_back({it, j.value("tokens_per_s", 0.0)});
      if (j.contains("kd_loss")) m.kd_loss.push_back({it, j["kd_loss"].get<double>()});
      if (j.contains("moe_loss")) m.moe_loss.push_back({it, j["moe_loss"].get<double>()});
      if (j.contains("moe_layers")) {
        m.iterations.push_back(it);
        for (const auto& l : j["moe_layers"]) {
          int64_t layer = l.value("layer", int64_t(0));
          if (!layer_index.count(layer)) {
            layer_index[layer] = m.moe_layers.size();
            m.moe_layers.push_back(layer);
            m.expert_share.emplace_back();
            m.dropped.emplace_back();
          }
          size_t li = layer_index[layer];
          std::vector<double> counts = l.value("expert_counts", std::vector<double>{});
          double total = 0;
          for (double c : counts) total += c;
          for (double& c : counts) c = total > 0 ? c / total : 0.0;
          m.expert_share[li].push_back(counts);
          m.dropped[li].push_back(l.value("dropped", 0.0));
        }
      }
    }
  }
  return m;
}

std::string svg_line_chart(const std::string& title, const std::vector<Series>& series, const std::string& y_label,
                           bool log_y) {
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  auto ty = [&](double y) { return log_y ? std::log10(std::max(y, 1e-300)) : y; };
  for (const Series& s : series)
    for (const auto& p : s.points) {
      x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
      y0 = std::min(y0, ty(p.y)), y1 = std::max(y1, ty(p.y));
    }
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" << kWidth << "\" height=\"" << kHeight
    << "\" viewBox=\"0 0 " << kWidth << " " << kHeight << "\" data-title=\"" << escape(title) << "\">\n";
  o << "<text x=\"" << kWidth / 2 << "\" y=\"18\" text-anchor=\"middle\" class=\"title\">" << escape(title)
    << "</text>\n";
  if (x0 > x1) {
    o << "<text x=\"" << kWidth / 2 << "\" y=\"" << kHeight / 2 << "\" text-anchor=\"middle\">no data</text>\n</svg>\n";
    return o.str();
  }
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return kTop + (1 - (ty(y) - y0) / (y1 - y0)) * ph; };
  o << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" class=\"frame\"/>\n";
  for (double t : ticks(y0, y1)) {
    double y = kTop + (1 - (t - y0) / (y1 - y0)) * ph;
    o << "<line x1=\"" << kLeft << "\" x2=\"" << kLeft + pw << "\" y1=\"" << num(y) << "\" y2=\"" << num(y)
      << "\" class=\"grid\"/><text x=\"" << kLeft - 4 << "\" y=\"" << num(y + 4) << "\" text-anchor=\"end\">"
      << num(log_y ? std::pow(10.0, t) : t) << "</text>\n";
  }
  for (double t : ticks(x0, x1))
    o << "<text x=\"" << num(px(t)) << "\" y=\"" << kHeight - kBottom + 16 << "\" text-anchor=\"middle\">" << num(t)
      << "</text>\n";
  o << "<text x=\"" << kLeft + pw / 2 << "\" y=\"" << kHeight - 6 << "\" text-anchor=\"middle\">iteration</text>\n";
  o << "<text x=\"14\" y=\"" << kTop + ph / 2 << "\" transform=\"rotate(-90 14 " << kTop + ph / 2
    << ")\" text-anchor=\"middle\">" << escape(y_label) << "</text>\n";
  int k = 0;
  for (const Series& s : series) {
    if (s.points.empty()) continue;
    std::string color = kColors[k % 8];
    std::string points, values;
    for (const auto& p : s.points) {
      points += num(px(p.x)) + "," + num(py(p.y)) + " ";
      values += num(p.x) + ":" + num(p.y) + " ";
    }
    o << "<polyline class=\"series\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.8\""
      << (s.dashed ? " stroke-dasharray=\"6 4\"" : "") << " data-series=\"" << escape(s.label) << "\" data-values=\""
      << values << "\" points=\"" << points << "\"/>\n";
    o << "<text x=\"" << kLeft + 8 << "\" y=\"" << kTop + 14 + 14 * k << "\" style=\"fill:" << color << "\">"
      << (s.dashed ? "- - " : "&#8212; ") << escape(s.label) << "</text>\n";
    ++k;
  }
  o << "</svg>\n";
  return o.str();
}

std::string svg_heatmap(const std::string& title, const std::vector<std::vector<double>>& cells,
                        const std::vector<double>& x, const std::string& row_label) {
  size_t cols = cells.size(), rows = 0;
  for (const auto& c : cells) rows = std::max(rows, c.size());
  double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\" width=\"" << kWidth << "\" height=\"" << kHeight
    << "\" viewBox=\"0 0 " << kWidth << " " << kHeight << "\" data-title=\"" << escape(title) << "\" data-rows=\""
    << rows << "\" data-columns=\"" << cols << "\">\n";
  o << "<text x=\"" << kWidth / 2 << "\" y=\"18\" text-anchor=\"middle\" class=\"title\">" << escape(title)
    << "</text>\n";
  if (cols == 0 || rows == 0) return o.str() + "</svg>\n";
  double cw = pw / double(cols), ch = ph / double(rows);
  for (size_t c = 0; c < cols; ++c)
    for (size_t r = 0; r < cells[c].size(); ++r) {
      double v = std::clamp(cells[c][r], 0.0, 1.0);
      int shade = int(std::lround(255 * (1 - std::min(1.0, v * double(rows) / 2))));  // 2x a fair share: darkest
      o << "<rect x=\"" << num(kLeft + double(c) * cw) << "\" y=\"" << num(kTop + double(r) * ch) << "\" width=\""
        << num(cw + 0.5) << "\" height=\"" << num(ch + 0.5) << "\" fill=\"rgb(" << shade << "," << shade << ",255)\""
        << " data-value=\"" << num(cells[c][r]) << "\"><title>" << escape(row_label) << " " << r << ", iteration "
        << num(c < x.size() ? x[c] : double(c)) << ": " << num(100 * cells[c][r]) << "%</title></rect>\n";
    }
  for (size_t r = 0; r < rows; ++r)
    o << "<text x=\"" << kLeft - 4 << "\" y=\"" << num(kTop + (double(r) + 0.5) * ch + 4) << "\" text-anchor=\"end\">"
      << r << "</text>\n";
  if (!x.empty()) {
    o << "<text x=\"" << kLeft << "\" y=\"" << kHeight - kBottom + 16 << "\">" << num(x.front()) << "</text>\n";
    o << "<text x=\"" << kLeft + pw << "\" y=\"" << kHeight - kBottom + 16 << "\" text-anchor=\"end\">" << num(x.back())
      << "</text>\n";
  }
  o << "<text x=\"" << kLeft + pw / 2 << "\" y=\"" << kHeight - 6 << "\" text-anchor=\"middle\">iteration (share of "
    << "tokens per " << escape(row_label) << ", darker = busier)</text>\n</svg>\n";
  return o.str();
}

std::string html_report(const std::vector<RunMetrics>& runs) {
  MT_CHECK(!runs.empty(), "report: no runs");
  auto each = [&](auto member, bool dashed = false, const std::string& suffix = "") {
    std::vector<Series> s;
    for (const RunMetrics& r : runs) s.push_back({r.name + suffix, r.*member, dashed});
    return s;
  };
  std::vector<Series> loss = each(&RunMetrics::train_loss, false, " train");
  for (const Series& v : each(&RunMetrics::valid_loss, true, " valid")) loss.push_back(v);
  std::ostringstream o;
  std::string names;
  for (const RunMetrics& r : runs) names += (names.empty() ? "" : ", ") + r.name;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>moetrain report: " << escape(names)
    << "</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;"
       "margin-top:28px}svg{margin:6px;background:#fff}svg text{font-size:11px;fill:#333}svg .title{font-size:13px;"
       "font-weight:bold}.frame{fill:none;stroke:#999}.grid{stroke:#eee}.charts{display:flex;flex-wrap:wrap}"
       "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style>\n"
       "</head><body>\n<h1>moetrain report: "
    << escape(names) << "</h1>\n<div class=\"charts\">\n";
  o << svg_line_chart("loss (train solid, validation dashed)", loss, "LM loss");
  o << svg_line_chart("learning rate", each(&RunMetrics::lr), "lr");
  o << svg_line_chart("gradient norm (before clipping)", each(&RunMetrics::grad_norm), "norm");
  o << svg_line_chart("throughput", each(&RunMetrics::tokens_per_s), "tokens/s");
  bool kd = false, moe = false;
  for (const RunMetrics& r : runs) kd |= !r.kd_loss.empty(), moe |= !r.moe_loss.empty();
  if (kd) o << svg_line_chart("distillation term (KD loss)", each(&RunMetrics::kd_loss), "kd loss");
  if (moe) o << svg_line_chart("MoE load-balancing term", each(&RunMetrics::moe_loss), "coeff x aux");
  o << "</div>\n";
  const RunMetrics& first = runs.front();
  if (!first.moe_layers.empty()) {
    o << "<h2>MoE layers of " << escape(first.name) << "</h2>\n<div class=\"charts\">\n";
    std::vector<Series> drops;
    for (size_t l = 0; l < first.moe_layers.size(); ++l) {
      std::vector<RunMetrics::Point> d;
      for (size_t s = 0; s < first.dropped[l].size() && s < first.iterations.size(); ++s)
        d.push_back({first.iterations[s], first.dropped[l][s]});
      drops.push_back({"layer " + std::to_string(first.moe_layers[l] + 1), d});
      o << svg_heatmap("expert load, layer " + std::to_string(first.moe_layers[l] + 1), first.expert_share[l],
                       first.iterations, "expert");
    }
    o << svg_line_chart("dropped fraction of assignments", drops, "dropped");
    o << "</div>\n";
  }
  bool tasks = false;
  for (const RunMetrics& r : runs) tasks |= !r.zero_shot.empty();
  if (tasks) {
    o << "<h2>zero-shot (the last evaluation of each "
         "run)</h2>\n<table><tr><th>run</th><th>metric</th><th>value</th></tr>\n";
    for (const RunMetrics& r : runs)
      for (const auto& [k, v] : r.zero_shot)
        o << "<tr><td>" << escape(r.name) << "</td><td>" << escape(k) << "</td><td>" << num(v) << "</td></tr>\n";
    o << "</table>\n";
  }
  o << "</body></html>\n";
  return o.str();
}

}  // namespace mt::train
