// `moetrain report RUN_DIR [--compare RUN_DIR ...]`: a self-contained HTML page (inline SVG and
// CSS; no scripts, no network) with the curves of one or more runs from their metrics.jsonl: a
// summary table of the final numbers first, then train and validation loss (runs overlaid),
// learning rate, gradient norm, tokens/s, the KD and MoE loss terms, and for the first run's MoE
// layers an expert-load heatmap over time (share of tokens per expert at each log step, with its
// colour scale) and the dropped fraction.
//
// Each run keeps one colour, dash pattern and marker shape in every chart; earlier runs are drawn
// wider and later ones narrower and half-transparent on top, so a curve that another run repeats
// stays visible (the legend, below the plot, names the run it repeats). Every chart's series
// carry their numbers (data-values="x:y ...") so tests can check the SVG against the metrics.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mt::toolkit {

// One run's metrics.jsonl, as the report uses it.
struct RunMetrics {
  std::string name;  // the run folder's name
  struct Point {
    double x, y;
  };
  std::vector<Point> train_loss, valid_loss, lr, grad_norm, tokens_per_s, kd_loss, moe_loss;
  std::vector<double> iterations;  // of the MoE log lines
  // per MoE layer: expert_share[layer][step][expert], and each logged per-layer number
  // (dropped, load_cv, dead_experts, interference, drop_cost: kMoeLayerCharts) by name: [layer][points]
  std::vector<int64_t> moe_layers;
  std::vector<std::vector<std::vector<double>>> expert_share;
  std::map<std::string, std::vector<std::vector<Point>>> layer_values;
  std::vector<std::pair<std::string, double>> zero_shot;  // the last "tasks" line
  // From the run's configuration (its newest checkpoint's config.yaml, or a sweep's
  // sweep_config.yaml); -1 when the folder has neither.
  int64_t params_total = -1, params_active = -1;
};
RunMetrics read_run_metrics(const std::string& run_dir);
// Whether a numeric field of a metrics.jsonl "tasks" record is a metric (a zero-shot score), not
// one of the record's counters (iteration, consumed samples and tokens).
bool is_task_metric(const std::string& key);

struct Series {
  std::string label;
  std::vector<RunMetrics::Point> points;
  int run = 0;           // whose look it takes: the run's colour, dash pattern, width and marker
  bool markers = false;  // a marker at every point, a thinner line (validation: few points)
};
// An SVG line chart of the series (empty ones left out), its legend below the plot area.
std::string svg_line_chart(const std::string& title, const std::vector<Series>& series, const std::string& y_label,
                           bool log_y = false);
// An SVG heatmap: cells[column][row] in [0, 1] (share), column c at iteration x[c], with a colour
// scale (0 to twice a fair share 1/rows) and round iteration numbers on the x axis.
std::string svg_heatmap(const std::string& title, const std::vector<std::vector<double>>& cells,
                        const std::vector<double>& x, const std::string& row_label);
// The summary table: per run the final iteration and train loss, the best and final validation
// loss and perplexity, the median logged tokens/s, parameters and the last zero-shot metrics.
// Cells carry data-col="<column>" and rows data-run="<run>".
std::string summary_table(const std::vector<RunMetrics>& runs);

std::string html_report(const std::vector<RunMetrics>& runs);

}  // namespace mt::toolkit
