// `moetrain report RUN_DIR [--compare RUN_DIR ...]`: a self-contained HTML page (inline SVG and
// CSS; no scripts, no network) with the curves of one or more runs from their metrics.jsonl:
// train and validation loss (runs overlaid), learning rate, gradient norm, tokens/s, the KD and
// MoE loss terms, zero-shot metrics, and for the first run's MoE layers an expert-load heatmap
// over time (share of tokens per expert at each log step) and the dropped fraction.
//
// Every chart's series carry their numbers (data-values="x:y ...") so tests can check the SVG
// against the metrics.
#pragma once

#include <string>
#include <vector>

namespace mt::train {

// One run's metrics.jsonl, as the report uses it.
struct RunMetrics {
  std::string name;  // the run folder's name
  struct Point {
    double x, y;
  };
  std::vector<Point> train_loss, valid_loss, lr, grad_norm, tokens_per_s, kd_loss, moe_loss;
  std::vector<double> iterations;  // of the MoE log lines
  // per MoE layer: expert_share[layer][step][expert] and dropped[layer][step]
  std::vector<int64_t> moe_layers;
  std::vector<std::vector<std::vector<double>>> expert_share;
  std::vector<std::vector<double>> dropped;
  std::vector<std::pair<std::string, double>> zero_shot;  // the last "tasks" line
};
RunMetrics read_run_metrics(const std::string& run_dir);

struct Series {
  std::string label;
  std::vector<RunMetrics::Point> points;
  bool dashed = false;
};
// An SVG line chart (width x height) of the series; empty series are left out.
std::string svg_line_chart(const std::string& title, const std::vector<Series>& series, const std::string& y_label,
                           bool log_y = false);
// An SVG heatmap: cells[column][row] in [0, 1] (share), columns labelled by `x`.
std::string svg_heatmap(const std::string& title, const std::vector<std::vector<double>>& cells,
                        const std::vector<double>& x, const std::string& row_label);

std::string html_report(const std::vector<RunMetrics>& runs);

}  // namespace mt::train
