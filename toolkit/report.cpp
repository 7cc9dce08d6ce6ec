#include "toolkit/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/error.h"
#include "train/checkpoint.h"
#include "train/checkpoint_folder.h"
#include "train/config.h"
#include "train/model_config.h"

namespace mt::toolkit {
using namespace train;  // the configuration, model and checkpoint helpers the tools drive
namespace fs = std::filesystem;
namespace {

// A chart without its legend: the plot area inside the margins; the legend's rows go below it.
constexpr double kWidth = 560, kHeight = 300, kLeft = 64, kRight = 16, kTop = 34, kBottom = 40;
constexpr double kLegendRow = 16, kLegendSample = 30, kCharWidth = 6.2;  // 11 px sans-serif, about
// A heatmap's plot area leaves this much on its right for the colour scale.
constexpr double kScaleRoom = 92, kScaleSteps = 32;
const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
const char* kDashes[] = {"none", "9 4", "2 3", "12 3 3 3", "6 2", "1 4"};

std::string num(double v) {  // compact, round-trippable enough for a chart and its data-values
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

// v with `digits` decimals: the summary table's numbers.
std::string fixed(double v, int digits) {
  char b[48];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
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

// Tick values: about five round numbers covering [lo, hi]; whole numbers only where `whole`
// (iterations).
std::vector<double> ticks(double lo, double hi, bool whole = false) {
  if (!(hi > lo)) return {lo};
  double step = std::pow(10.0, std::floor(std::log10((hi - lo) / 4)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if ((hi - lo) / (step * m) <= 5) {
      step *= m;
      break;
    }
  if (whole) step = std::max(step, 1.0);
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) t.push_back(v);
  return t;
}

// How run `run`'s series look in every chart. Earlier runs are wider, later ones narrower on top
// of them and half-transparent, each with its own dash pattern and marker shape: a curve that
// another run repeats exactly still shows as a wide line with a dashed one inside.
struct Style {
  std::string color, dash;
  double width, marker_size;
  int marker;  // 0 circle, 1 square, 2 triangle, 3 diamond
};
Style run_style(int run) {
  return {kColors[run % 8], kDashes[run % 6], std::max(1.2, 3.6 - 1.0 * run), std::max(2.4, 4.6 - 0.8 * run), run % 4};
}

// The stroke attributes of a series' line (validation lines, with markers, are thinner).
std::string stroke(const Style& s, bool markers) {
  return "fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"" + num(markers ? s.width * 0.6 : s.width) +
         "\" stroke-opacity=\"0.7\" stroke-dasharray=\"" + s.dash + "\"";
}

// One marker of the style's shape centred on (x, y).
std::string marker(const Style& s, double x, double y) {
  double r = s.marker_size;
  std::string paint = " fill=\"" + s.color + "\" fill-opacity=\"0.85\" stroke=\"#fff\" stroke-width=\"0.7\"/>";
  auto polygon = [&](std::initializer_list<std::pair<double, double>> corners) {
    std::string p;
    for (auto [dx, dy] : corners) p += num(x + dx * r) + "," + num(y + dy * r) + " ";
    return "<polygon class=\"marker\" points=\"" + p + "\"" + paint;
  };
  switch (s.marker) {
    case 0:
      return "<circle class=\"marker\" cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"" + num(r) + "\"" + paint;
    case 1:
      return "<rect class=\"marker\" x=\"" + num(x - 0.85 * r) + "\" y=\"" + num(y - 0.85 * r) + "\" width=\"" +
             num(1.7 * r) + "\" height=\"" + num(1.7 * r) + "\"" + paint;
    case 2:
      return polygon({{0, -1.2}, {1.05, 0.75}, {-1.05, 0.75}});
    default:
      return polygon({{0, -1.25}, {1.25, 0}, {0, 1.25}, {-1.25, 0}});
  }
}

// Whether two series hold the same points (a run that repeats another's curve).
bool same_points(const Series& a, const Series& b) {
  if (a.points.size() != b.points.size() || a.points.empty()) return false;
  for (size_t i = 0; i < a.points.size(); ++i)
    if (a.points[i].x != b.points[i].x ||
        std::abs(a.points[i].y - b.points[i].y) > 1e-12 * std::max(1.0, std::abs(a.points[i].y)))
      return false;
  return true;
}

// The opening of an SVG chart of the given height, with its title.
std::string svg_open(const char* cls, const std::string& title, double height, const std::string& attributes = "") {
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"" << cls << "\" width=\"" << kWidth << "\" height=\""
    << num(height) << "\" viewBox=\"0 0 " << kWidth << " " << num(height) << "\" data-title=\"" << escape(title) << "\""
    << attributes << ">\n<text x=\"" << kWidth / 2 << "\" y=\"18\" text-anchor=\"middle\" class=\"title\">"
    << escape(title) << "</text>\n";
  return o.str();
}

// The legend entries (a line sample in the series' style, its marker, its label) in rows below
// the plot area, starting at y = kHeight; sets `height` to the chart's height with them.
std::string legend(const std::vector<const Series*>& shown, const std::vector<std::string>& labels, double* height) {
  std::ostringstream o;
  double x = kLeft, row = 0;
  for (size_t k = 0; k < shown.size(); ++k) {
    double w = kLegendSample + 6 + kCharWidth * double(labels[k].size()) + 16;
    if (x > kLeft && x + w > kWidth - kRight) x = kLeft, ++row;
    double y = kHeight + 6 + row * kLegendRow;
    Style s = run_style(shown[k]->run);
    o << "<g class=\"legend-entry\" data-series=\"" << escape(shown[k]->label) << "\"><line x1=\"" << num(x)
      << "\" x2=\"" << num(x + kLegendSample) << "\" y1=\"" << num(y) << "\" y2=\"" << num(y) << "\" "
      << stroke(s, shown[k]->markers) << "/>";
    if (shown[k]->markers) o << marker(s, x + kLegendSample / 2, y);
    o << "<text x=\"" << num(x + kLegendSample + 6) << "\" y=\"" << num(y + 4) << "\">" << escape(labels[k])
      << "</text></g>\n";
    x += w;
  }
  *height = shown.empty() ? kHeight : kHeight + 6 + (row + 1) * kLegendRow;
  return o.str();
}

// The x position of iteration t on a heatmap whose column c (width cw) is centred on iteration
// x[c]: linear between neighbouring column centres.
double heatmap_x(double t, const std::vector<double>& x, double cw) {
  size_t c = 0;
  while (c + 2 < x.size() && x[c + 1] < t) ++c;
  double f = x.size() < 2 || x[c + 1] == x[c] ? 0 : (t - x[c]) / (x[c + 1] - x[c]);
  return kLeft + (double(c) + 0.5 + f) * cw;
}

// The fill of a heatmap cell holding share v of the tokens among `rows` experts: white at 0, the
// darkest blue from twice a fair share (2 / rows) up.
std::string heat_fill(double v, size_t rows) {
  int shade = int(std::lround(255 * (1 - std::min(1.0, std::clamp(v, 0.0, 1.0) * double(rows) / 2))));
  return "rgb(" + std::to_string(shade) + "," + std::to_string(shade) + ",255)";
}

// The colour scale right of a heatmap's plot area (x0, height ph): the fill of shares 0 to twice
// a fair share from bottom to top, ticks at 0, 1/2, 1, 3/2 and 2 fair shares, labelled in percent.
std::string heat_scale(double x0, double ph, size_t rows) {
  std::ostringstream o;
  double top = 2.0 / double(rows), bar = 12, step = ph / kScaleSteps;
  o << "<g class=\"scale\" data-max=\"" << num(top) << "\">\n";
  for (int i = 0; i < int(kScaleSteps); ++i)
    o << "<rect x=\"" << num(x0) << "\" y=\"" << num(kTop + ph - double(i + 1) * step) << "\" width=\"" << bar
      << "\" height=\"" << num(step + 0.5) << "\" fill=\"" << heat_fill((double(i) + 0.5) / kScaleSteps * top, rows)
      << "\"/>\n";
  o << "<rect x=\"" << num(x0) << "\" y=\"" << kTop << "\" width=\"" << bar << "\" height=\"" << num(ph)
    << "\" class=\"frame\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    double share = top * i / 4, y = kTop + ph * (1 - i / 4.0);
    o << "<g class=\"scale-tick\" data-share=\"" << num(share) << "\"><line x1=\"" << num(x0 + bar) << "\" x2=\""
      << num(x0 + bar + 4) << "\" y1=\"" << num(y) << "\" y2=\"" << num(y) << "\" stroke=\"#333\"/><text x=\""
      << num(x0 + bar + 6) << "\" y=\"" << num(y + 4) << "\">" << (i == 4 ? "&#8805;" : "") << num(100 * share) << "%"
      << (i == 2 ? " fair" : "") << "</text></g>\n";
  }
  return o.str() + "</g>\n";
}

// The median of the points' values (0 for none).
double median_y(const std::vector<RunMetrics::Point>& points) {
  if (points.empty()) return 0;
  std::vector<double> v;
  for (const auto& p : points) v.push_back(p.y);
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Total and active parameters of the run's model, from its newest checkpoint's config.yaml or
// else a sweep's sweep_config.yaml; left at -1 when neither is there or readable.
void read_parameter_counts(const std::string& run_dir, RunMetrics& m) {
  std::vector<CheckpointEntry> saved = list_checkpoints(run_dir);
  fs::path config =
      saved.empty() ? fs::path(run_dir) / "sweep_config.yaml" : fs::path(checkpoint_config_path(saved.back().path));
  if (!fs::exists(config)) return;
  try {
    TrainConfig cfg = load_config_file(config.string());
    int64_t vocab = config_tokenizer(cfg).vocab_size();
    m.params_total = count_parameters(cfg, vocab);
    m.params_active = count_active_parameters(cfg, vocab);
  } catch (const std::exception&) {  // a config of another version, a tokenizer moved: not known
  }
}

}  // namespace

bool is_task_metric(const std::string& key) {
  return key != "iteration" && key != "split" && key != "consumed_tokens" && key != "consumed_samples";
}

// The per-MoE-layer numbers of metrics.jsonl's moe_layers the report charts (when a run has
// them): field, chart title, y axis.
struct LayerChart {
  const char *field, *title, *y_label;
};
constexpr LayerChart kMoeLayerCharts[] = {
    {"dropped", "dropped fraction of assignments", "dropped"},
    {"load_cv", "expert load: coefficient of variation (0: balanced)", "load CV"},
    {"dead_experts", "dead experts (no token in the interval)", "experts"},
    {"interference", "interference: cosine of the LM and balancing gate gradients", "cosine"},
    {"drop_cost", "drop cost: LM loss per dropped token, had it been kept", "nats"},
};

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
        if (v.is_number() && is_task_metric(k)) m.zero_shot.push_back({k, v.get<double>()});
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
            for (const LayerChart& c : kMoeLayerCharts) m.layer_values[c.field].emplace_back();
          }
          size_t li = layer_index[layer];
          std::vector<double> counts = l.value("expert_counts", std::vector<double>{});
          double total = 0;
          for (double c : counts) total += c;
          for (double& c : counts) c = total > 0 ? c / total : 0.0;
          m.expert_share[li].push_back(counts);
          for (const LayerChart& c : kMoeLayerCharts)
            if (l.contains(c.field) && l[c.field].is_number())
              m.layer_values[c.field][li].push_back({it, l[c.field].get<double>()});
        }
      }
    }
  }
  read_parameter_counts(run_dir, m);
  return m;
}

std::string svg_line_chart(const std::string& title, const std::vector<Series>& series, const std::string& y_label,
                           bool log_y) {
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  auto ty = [&](double y) { return log_y ? std::log10(std::max(y, 1e-300)) : y; };
  std::vector<const Series*> shown;
  std::vector<std::string> labels;  // the legend's: "b train (same as a train)" for a repeated curve
  for (const Series& s : series) {
    if (s.points.empty()) continue;
    std::string label = s.label;
    for (const Series* earlier : shown)
      if (same_points(*earlier, s)) {
        label += " (same as " + earlier->label + ")";
        break;
      }
    shown.push_back(&s);
    labels.push_back(label);
    for (const auto& p : s.points) {
      x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
      y0 = std::min(y0, ty(p.y)), y1 = std::max(y1, ty(p.y));
    }
  }
  double height = kHeight;
  std::string legend_svg = legend(shown, labels, &height);
  std::ostringstream o;
  o << svg_open("chart", title, height);
  if (shown.empty()) {
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
  for (double t : ticks(x0, x1, true))
    o << "<text class=\"x-tick\" x=\"" << num(px(t)) << "\" y=\"" << kHeight - kBottom + 16
      << "\" text-anchor=\"middle\">" << num(t) << "</text>\n";
  o << "<text x=\"" << kLeft + pw / 2 << "\" y=\"" << kHeight - 6 << "\" text-anchor=\"middle\">iteration</text>\n";
  o << "<text x=\"14\" y=\"" << kTop + ph / 2 << "\" transform=\"rotate(-90 14 " << kTop + ph / 2
    << ")\" text-anchor=\"middle\">" << escape(y_label) << "</text>\n";
  for (const Series* s : shown) {
    Style st = run_style(s->run);
    std::string points, values, markers;
    for (const auto& p : s->points) {
      points += num(px(p.x)) + "," + num(py(p.y)) + " ";
      values += num(p.x) + ":" + num(p.y) + " ";
      if (s->markers) markers += marker(st, px(p.x), py(p.y));
    }
    o << "<polyline class=\"series\" " << stroke(st, s->markers) << " data-series=\"" << escape(s->label)
      << "\" data-values=\"" << values << "\" points=\"" << points << "\"/>\n"
      << markers << (markers.empty() ? "" : "\n");
  }
  o << legend_svg << "</svg>\n";
  return o.str();
}

std::string svg_heatmap(const std::string& title, const std::vector<std::vector<double>>& cells,
                        const std::vector<double>& x, const std::string& row_label) {
  size_t cols = cells.size(), rows = 0;
  for (const auto& c : cells) rows = std::max(rows, c.size());
  double pw = kWidth - kLeft - kRight - kScaleRoom, ph = kHeight - kTop - kBottom;
  std::ostringstream o;
  o << svg_open("heatmap", title, kHeight,
                " data-rows=\"" + std::to_string(rows) + "\" data-columns=\"" + std::to_string(cols) + "\"");
  if (cols == 0 || rows == 0) return o.str() + "</svg>\n";
  double cw = pw / double(cols), ch = ph / double(rows);
  for (size_t c = 0; c < cols; ++c)
    for (size_t r = 0; r < cells[c].size(); ++r)
      o << "<rect x=\"" << num(kLeft + double(c) * cw) << "\" y=\"" << num(kTop + double(r) * ch) << "\" width=\""
        << num(cw + 0.5) << "\" height=\"" << num(ch + 0.5) << "\" fill=\"" << heat_fill(cells[c][r], rows)
        << "\" data-value=\"" << num(cells[c][r]) << "\"><title>" << escape(row_label) << " " << r << ", iteration "
        << num(c < x.size() ? x[c] : double(c)) << ": " << num(100 * cells[c][r]) << "%</title></rect>\n";
  size_t every = size_t(std::ceil(12 / ch));  // row labels at least 12 px apart
  for (size_t r = 0; r < rows; r += every)
    o << "<text x=\"" << kLeft - 4 << "\" y=\"" << num(kTop + (double(r) + 0.5) * ch + 4) << "\" text-anchor=\"end\">"
      << r << "</text>\n";
  std::vector<double> at(x.begin(), x.begin() + long(std::min(x.size(), cols)));
  if (!at.empty())
    for (double t : ticks(at.front(), at.back(), true)) {
      double tx = heatmap_x(t, at, cw);
      o << "<g class=\"x-tick\"><line x1=\"" << num(tx) << "\" x2=\"" << num(tx) << "\" y1=\"" << kTop + ph
        << "\" y2=\"" << kTop + ph + 4 << "\" stroke=\"#333\"/><text x=\"" << num(tx) << "\" y=\""
        << kHeight - kBottom + 16 << "\" text-anchor=\"middle\">" << num(t) << "</text></g>\n";
    }
  o << heat_scale(kLeft + pw + 14, ph, rows);
  o << "<text x=\"" << kLeft + pw / 2 << "\" y=\"" << kHeight - 6 << "\" text-anchor=\"middle\">iteration (share of "
    << "tokens per " << escape(row_label) << "; fair share " << num(100.0 / double(rows)) << "%)</text>\n</svg>\n";
  return o.str();
}

std::string summary_table(const std::vector<RunMetrics>& runs) {
  std::vector<std::string> tasks;  // every zero-shot metric of any run, in order of appearance
  for (const RunMetrics& r : runs)
    for (const auto& [k, v] : r.zero_shot)
      if (std::find(tasks.begin(), tasks.end(), k) == tasks.end()) tasks.push_back(k);
  std::ostringstream o;
  o << "<div class=\"wide\"><table class=\"summary\"><tr><th>run</th><th>iteration</th><th>train loss</th><th>best "
       "valid loss "
       "(iteration)</th><th>best valid ppl</th><th>final valid loss</th><th>final valid ppl</th><th>tokens/s "
       "(median)</th><th>parameters</th><th>active parameters</th>";
  for (const std::string& t : tasks) o << "<th>" << escape(t) << "</th>";
  o << "</tr>\n";
  auto cell = [&](const char* col, const std::string& text) {
    o << "<td data-col=\"" << col << "\">" << (text.empty() ? "&#8211;" : text) << "</td>";
  };
  auto millions = [](int64_t n) { return n < 0 ? std::string() : fixed(double(n) / 1e6, 2) + "M"; };
  for (const RunMetrics& r : runs) {
    o << "<tr data-run=\"" << escape(r.name) << "\"><td data-col=\"run\" style=\"text-align:left\">" << escape(r.name)
      << "</td>";
    const auto& train = r.train_loss;
    cell("iteration", train.empty() ? "" : num(train.back().x));
    cell("train_loss", train.empty() ? "" : fixed(train.back().y, 4));
    auto best = std::min_element(r.valid_loss.begin(), r.valid_loss.end(),
                                 [](const auto& a, const auto& b) { return a.y < b.y; });
    bool valid = best != r.valid_loss.end();
    cell("best_valid_loss", valid ? fixed(best->y, 4) + " (" + num(best->x) + ")" : "");
    cell("best_valid_ppl", valid ? fixed(std::exp(best->y), 2) : "");
    cell("final_valid_loss", valid ? fixed(r.valid_loss.back().y, 4) : "");
    cell("final_valid_ppl", valid ? fixed(std::exp(r.valid_loss.back().y), 2) : "");
    cell("tokens_per_s", r.tokens_per_s.empty() ? "" : fixed(median_y(r.tokens_per_s), 0));
    cell("params_total", millions(r.params_total));
    cell("params_active", millions(r.params_active));
    for (const std::string& t : tasks) {
      auto it = std::find_if(r.zero_shot.begin(), r.zero_shot.end(), [&](const auto& kv) { return kv.first == t; });
      cell("zero_shot", it == r.zero_shot.end() ? "" : fixed(it->second, 4));
    }
    o << "</tr>\n";
  }
  o << "</table></div>\n<p class=\"note\">Validation perplexity = exp(loss); tokens/s: the median of the logged "
       "intervals; parameters from the run's configuration (the newest checkpoint's config.yaml); zero-shot: the "
       "last evaluation of each run.</p>\n";
  return o.str();
}

std::string html_report(const std::vector<RunMetrics>& runs) {
  MT_CHECK(!runs.empty(), "report: no runs");
  auto each = [&](auto member, bool markers = false, const std::string& suffix = "") {
    std::vector<Series> s;
    for (size_t i = 0; i < runs.size(); ++i) s.push_back({runs[i].name + suffix, runs[i].*member, int(i), markers});
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
       "font-weight:bold}.frame{fill:none;stroke:#999}.grid{stroke:#eee}.charts{display:flex;flex-wrap:wrap;"
       "align-items:flex-start}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
       "text-align:right}th{background:#f4f4f4}.note{font-size:12px;color:#555}.wide{overflow-x:auto}</style>\n"
       "</head><body>\n<h1>moetrain report: "
    << escape(names) << "</h1>\n<h2>summary</h2>\n"
    << summary_table(runs) << "<div class=\"charts\">\n";
  o << svg_line_chart("loss (train: lines; validation: lines with markers)", loss, "LM loss");
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
    for (size_t l = 0; l < first.moe_layers.size(); ++l)
      o << svg_heatmap("expert load, layer " + std::to_string(first.moe_layers[l] + 1), first.expert_share[l],
                       first.iterations, "expert");
    for (const LayerChart& c : kMoeLayerCharts) {  // one curve per layer, where the run logged the number
      std::vector<Series> layers;
      const std::vector<std::vector<RunMetrics::Point>>& values = first.layer_values.at(c.field);
      for (size_t l = 0; l < values.size(); ++l)
        layers.push_back({"layer " + std::to_string(first.moe_layers[l] + 1), values[l], int(l)});
      bool any = std::any_of(layers.begin(), layers.end(), [](const Series& s) { return !s.points.empty(); });
      if (any) o << svg_line_chart(c.title, layers, c.y_label);
    }
    o << "</div>\n";
  }
  o << "</body></html>\n";
  return o.str();
}

}  // namespace mt::toolkit
