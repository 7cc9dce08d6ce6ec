// Sweeps: expansion order, names, overrides and interpolation; every bad input refused before
// anything runs; --collect's table from run folders; the report's SVG against the metrics.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>

#include "test_folders.h"
#include "toolkit/report.h"
#include "toolkit/sweep.h"
#include "train/model_config.h"

using namespace mt;
using namespace mt::train;
using namespace mt::toolkit;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

const std::string kBase = MOETRAIN_SOURCE_DIR "/configs/tiny-moe.yaml";

fs::path fresh(const std::string& name) {
  return testfolders::fresh_temp_dir("moetrain_sweep_" + name);
}

std::string write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
  return p.string();
}

// A sweep file in `dir`: base and output set, then `body`.
std::string sweep_file(const fs::path& dir, const std::string& body) {
  return write(dir / "s.yaml", "base: " + kBase + "\noutput: " + (dir / "out").string() + "\n" + body);
}

}  // namespace

TEST_CASE("a sweep expands runs x zip x grid, the last grid key fastest", "[sweep]") {
  fs::path d = fresh("expand");
  Sweep s = load_sweep(sweep_file(d, R"(set: {train_iters: 10, metrics_file: "${output}/${name}.jsonl"}
grid:
  moe_train_capacity_factor: [0.5, 1.0, 2.0]
  num_experts: [4, 8]
zip:
  lr: [1.0e-3, 2.0e-3]
  min_lr: [1.0e-4, 2.0e-4]
runs:
  - {mlp_type: standard}
  - {mlp_type: residual, name: "pr-lr${lr}-cf${moe_train_capacity_factor}-e${num_experts}"}
run_name: "${mlp_type}-lr${lr}-cf${moe_train_capacity_factor}-e${num_experts}"
)"));
  REQUIRE(s.name == "s");
  REQUIRE(s.runs.size() == 24);
  REQUIRE(s.runs[0].name == "standard-lr1.0e-3-cf0.5-e4");
  REQUIRE(s.runs[1].name == "standard-lr1.0e-3-cf0.5-e8");  // the last grid key varies fastest
  REQUIRE(s.runs[2].name == "standard-lr1.0e-3-cf1.0-e4");
  REQUIRE(s.runs[6].name == "standard-lr2.0e-3-cf0.5-e4");  // then the zip
  REQUIRE(s.runs[12].name == "pr-lr1.0e-3-cf0.5-e4");       // then the runs list
  const TrainConfig& c = s.runs[13].config;
  REQUIRE(c.mlp_type == "residual");
  REQUIRE(c.lr == 1e-3);
  REQUIRE(c.min_lr == 1e-4);
  REQUIRE(c.num_experts == std::vector<std::string>{"8"});
  REQUIRE(c.moe_train_capacity_factor == 0.5);
  REQUIRE(c.train_iters == 10);
  REQUIRE(c.save == (d / "out" / s.runs[13].name).string());
  REQUIRE(c.load == c.save);  // an interrupted run resumes
  REQUIRE(c.metrics_file == (d / "out" / (s.runs[13].name + ".jsonl")).string());
  // default names: key=value of what varies; no axes at all: one run
  Sweep plain = load_sweep(sweep_file(d, "grid: {topk: [1, 2]}\n"));
  REQUIRE(plain.runs[1].name == "topk=2");
  REQUIRE(load_sweep(sweep_file(d, "set: {train_iters: 5}\n")).runs.size() == 1);
}

TEST_CASE("bad sweeps are refused before anything runs", "[sweep][errors]") {
  fs::path d = fresh("errors");
  REQUIRE_THROWS_WITH(load_sweep(sweep_file(d, "grid: {num_expert: [4, 8]}\n")),
                      Contains("grid.num_expert") && Contains("did you mean 'num_experts'"));
  REQUIRE_THROWS_WITH(load_sweep(sweep_file(d, "grid: {train_iters: [10, many]}\n")),
                      Contains("train_iters expects an integer, got 'many'"));
  REQUIRE_THROWS_WITH(load_sweep(sweep_file(d, "grid: {topk: []}\n")),
                      Contains("grid.topk: give a non-empty list of values"));
  REQUIRE_THROWS_WITH(load_sweep(sweep_file(d, "zip: {lr: [1, 2], min_lr: [0.1]}\n")),
                      Contains("zip.min_lr: 1 values, but the zip's first key has 2"));
  REQUIRE_THROWS_WITH(load_sweep(sweep_file(d, "grid: {topk: [1, 2]}\nrun_name: same\n")),
                      Contains("two runs are named 'same'"));
  REQUIRE_THROWS_WITH(load_sweep(sweep_file(d, "grids: {topk: [1, 2]}\n")), Contains("did you mean 'grid'"));
  REQUIRE_THROWS_WITH(load_sweep(sweep_file(d, "grid: {topk: [1, 9]}\n")),
                      Contains("run 'topk=9'") && Contains("topk (9) must be between 1 and"));
  REQUIRE_THROWS_WITH(load_sweep(sweep_file(d, "set: {save: \"${nme}\"}\n")), Contains("'${nme}' names nothing"));
  // a run folder that already holds another config
  Sweep s = load_sweep(sweep_file(d, "grid: {topk: [1, 2]}\n"));
  prepare_run(s.runs[0], "moetrain", "");
  REQUIRE_NOTHROW(load_sweep(sweep_file(d, "grid: {topk: [1, 2]}\n")));  // the same config: fine (resume)
  REQUIRE_THROWS_WITH(load_sweep(sweep_file(d, "grid: {topk: [1, 2]}\nset: {lr: 0.5}\n")),
                      Contains("topk=1': the folder") && Contains("holds a run of a different config"));
}

TEST_CASE("collecting tabulates the run folders, and commands and Slurm scripts are written", "[sweep]") {
  fs::path d = fresh("collect");
  Sweep s = load_sweep(sweep_file(d, "grid: {num_experts: [4, 8]}\nset: {train_iters: 3}\n"));
  REQUIRE(prepare_run(s.runs[0], "/bin/moetrain", "mpirun -np 2") ==
          "mpirun -np 2 '/bin/moetrain' train '" + s.runs[0].dir + "/sweep_config.yaml'");
  prepare_run(s.runs[1], "/bin/moetrain", "");
  write(fs::path(s.runs[0].dir) / "metrics.jsonl",
        "{\"iteration\":1,\"split\":\"train\",\"lm_loss\":10.5,\"tokens_per_s\":1000}\n"
        "{\"iteration\":3,\"split\":\"train\",\"lm_loss\":9.25,\"tokens_per_s\":1200}\n"
        "{\"iteration\":3,\"split\":\"valid\",\"lm_loss\":9.5}\n"
        "{\"iteration\":3,\"split\":\"tasks\",\"lambada_acc\":0.125}\n");
  write(fs::path(s.runs[0].dir) / "sweep_status.json", "{\"state\":\"finished\"}");
  write(fs::path(s.runs[1].dir) / "sweep_status.json", "{\"state\":\"failed\",\"error\":\"boom, \\\"quoted\\\"\"}");
  SweepTable t = collect_sweep(s.output);
  REQUIRE(t.columns == std::vector<std::string>{"run", "num_experts", "iteration", "train_loss", "valid_loss",
                                                "lambada_acc", "params_total", "params_active", "tokens_per_s",
                                                "status"});
  REQUIRE(t.rows[0] == std::vector<std::string>{"num_experts=4", "4", "3", "9.2500", "9.5000", "0.1250", "8.04M",
                                                "7.25M", "1200", "finished"});
  REQUIRE(t.rows[1][9] == "failed: boom, \"quoted\"");
  REQUIRE(to_csv(t).find("\"failed: boom, \"\"quoted\"\"\"") != std::string::npos);
  REQUIRE(to_markdown(t).find("| num_experts=4 | 4 | 3 | 9.2500 |") != std::string::npos);
  std::string slurm = emit_slurm(s, "/bin/moetrain", "");
  std::ifstream in(slurm);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(text.find("#SBATCH --array=0-1") != std::string::npos);
  REQUIRE(text.find("SLURM_ARRAY_TASK_ID") != std::string::npos);
}

TEST_CASE("the report's SVG holds the metrics", "[report]") {
  std::vector<Series> s = {{"a", {{1, 2.0}, {3, 4.0}}}, {"b", {{1, 3.0}, {2, 1.0}}, 1, true}};
  std::string svg = svg_line_chart("loss", s, "LM loss");
  REQUIRE(svg.find("data-series=\"a\" data-values=\"1:2 3:4 \"") != std::string::npos);
  REQUIRE(svg.find("stroke-dasharray=\"9 4\"") != std::string::npos);  // b (run 1) is dashed
  // x from 64 (iteration 1) to 544 (iteration 3); y from 260 (value 1) to 34 (value 4)
  REQUIRE(svg.find("points=\"64,184.667 544,34 \"") != std::string::npos);
  REQUIRE(svg.find("points=\"64,109.333 304,260 \"") != std::string::npos);
  std::string heat = svg_heatmap("load", {{0.5, 0.5}, {1.0, 0.0}}, {10, 20}, "expert");
  REQUIRE(heat.find("data-rows=\"2\" data-columns=\"2\"") != std::string::npos);
  REQUIRE(heat.find("data-value=\"1\"") != std::string::npos);

  fs::path d = fresh("report");
  write(d / "run" / "metrics.jsonl",
        "{\"iteration\":10,\"split\":\"train\",\"lm_loss\":9.5,\"lr\":0.001,\"grad_norm\":1.5,\"tokens_per_s\":900,"
        "\"moe_loss\":0.02,\"moe_layers\":[{\"layer\":1,\"expert_counts\":[30,10],\"dropped\":0.25}]}\n"
        "{\"iteration\":20,\"split\":\"train\",\"lm_loss\":8.5,\"lr\":0.002,\"grad_norm\":1.0,\"tokens_per_s\":950,"
        "\"moe_loss\":0.01,\"moe_layers\":[{\"layer\":1,\"expert_counts\":[20,20],\"dropped\":0.1,"
        "\"load_cv\":0,\"interference\":-0.5,\"drop_cost\":0.125}]}\n"
        "{\"iteration\":20,\"split\":\"valid\",\"lm_loss\":8.75}\n");
  RunMetrics m = read_run_metrics((d / "run").string());
  REQUIRE(m.expert_share[0][0] == std::vector<double>{0.75, 0.25});
  std::string html = html_report({m});
  REQUIRE(html.rfind("<!DOCTYPE html>", 0) == 0);
  REQUIRE(html.find("<script") == std::string::npos);
  REQUIRE(html.find("http") == html.find("http://www.w3.org/2000/svg"));  // no other address: nothing fetched
  REQUIRE(html.find("data-series=\"run train\" data-values=\"10:9.5 20:8.5 \"") != std::string::npos);
  REQUIRE(html.find("data-series=\"run valid\" data-values=\"20:8.75 \"") != std::string::npos);
  REQUIRE(html.find("data-series=\"layer 2\" data-values=\"10:0.25 20:0.1 \"") != std::string::npos);
  REQUIRE(html.find("expert load, layer 2") != std::string::npos);
  // the router diagnostics, where logged (the first record has none: one point each)
  REQUIRE(html.find("data-series=\"layer 2\" data-values=\"20:-0.5 \"") != std::string::npos);
  REQUIRE(html.find("data-series=\"layer 2\" data-values=\"20:0.125 \"") != std::string::npos);
  REQUIRE(html.find("drop cost: LM loss per dropped token") != std::string::npos);
  REQUIRE(html.find("dead experts") == std::string::npos);  // (never logged here)
  REQUIRE_THROWS_WITH(read_run_metrics((d / "none").string()), Contains("no metrics in"));
}

namespace {

// The numbers of every match of `pattern`'s first group in `text`, in order.
std::vector<double> captured_numbers(const std::string& text, const std::string& pattern) {
  std::vector<double> out;
  std::regex re(pattern);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back(std::stod((*it)[1]));
  return out;
}

// The text of every match of `pattern`'s first group in `text`, in order.
std::vector<std::string> captured_strings(const std::string& text, const std::string& pattern) {
  std::vector<std::string> out;
  std::regex re(pattern);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1]);
  return out;
}

}  // namespace

TEST_CASE("the report's legend sits below the plot and every run's curve stays visible", "[report]") {
  std::vector<Series> s = {{"a", {{0, 1.0}, {10, 2.0}}, 0},
                           {"b", {{0, 1.0}, {10, 2.0}}, 1},  // the same curve as a
                           {"c", {{5, 1.5}}, 2, true}};      // one validation point
  std::string svg = svg_line_chart("loss", s, "LM loss");
  // the plot area: the frame rectangle
  double plot_bottom = 34 + captured_numbers(svg, R"re(<rect x="64" y="34" width="480" height="([0-9.]+)")re")[0];
  double height = captured_numbers(svg, R"re(<svg [^>]*height="([0-9.]+)")re")[0];
  std::vector<double> legend_y = captured_numbers(svg, R"re(class="legend-entry"[^>]*><line [^>]*y1="([0-9.]+)")re");
  REQUIRE(legend_y.size() == 3);
  for (double y : legend_y) {
    REQUIRE(y > plot_bottom + 30);  // below the plot and its axis labels
    REQUIRE(y < height);            // inside the chart
  }
  // three runs, three dash patterns, wider to narrower, half-transparent
  std::vector<std::string> dashes = captured_strings(svg, R"re(<polyline[^>]*stroke-dasharray="([^"]+)")re");
  REQUIRE(dashes.size() == 3);
  REQUIRE(dashes[0] != dashes[1]);
  REQUIRE(dashes[1] != dashes[2]);
  REQUIRE(dashes[0] != dashes[2]);
  std::vector<double> widths = captured_numbers(svg, R"re(<polyline[^>]*stroke-width="([0-9.]+)")re");
  REQUIRE(widths[0] > widths[1]);  // a, drawn first, shows around b drawn on top
  for (double o : captured_numbers(svg, R"re(<polyline[^>]*stroke-opacity="([0-9.]+)")re")) REQUIRE(o < 1);
  REQUIRE(svg.find(">b (same as a)</text>") != std::string::npos);
  REQUIRE(svg.find(">c</text>") != std::string::npos);
  // c's one point has a marker (a one-point polyline draws nothing), and so has its legend entry
  REQUIRE(captured_strings(svg, R"re(class="(marker)")re").size() == 2);
}

TEST_CASE("the report's heatmap has a colour scale and round iteration ticks", "[report]") {
  std::vector<std::vector<double>> cells;
  std::vector<double> x;
  for (int i = 1; i <= 25; ++i) {
    cells.push_back({0.5, 0.25, 0.25, 0.0});
    x.push_back(10.0 * i);  // iterations 10, 20, ..., 250
  }
  std::string heat = svg_heatmap("load", cells, x, "expert");
  // scale ticks at 0, 1/2, 1, 3/2 and 2 fair shares (fair = 1/4), labelled in percent
  REQUIRE(captured_numbers(heat, R"re(class="scale-tick" data-share="([0-9.]+)")re") ==
          std::vector<double>{0, 0.125, 0.25, 0.375, 0.5});
  REQUIRE(heat.find(">25% fair</text>") != std::string::npos);
  REQUIRE(heat.find(">&#8805;50%</text>") != std::string::npos);
  // twice a fair share: the darkest blue, the scale's top
  REQUIRE(heat.find("fill=\"rgb(0,0,255)\" data-value=\"0.5\"") != std::string::npos);
  // x ticks at round iterations, in order, each at its column's place
  std::vector<double> labels = captured_numbers(heat, R"re(class="x-tick"><line[^>]*/><text[^>]*>([0-9.]+)<)re");
  REQUIRE(labels == std::vector<double>{50, 100, 150, 200, 250});
  std::vector<double> at = captured_numbers(heat, R"re(class="x-tick"><line x1="([0-9.]+)")re");
  double cw = (560 - 64 - 16 - 92) / 25.0;
  REQUIRE(at[0] == Approx(64 + 4.5 * cw));   // iteration 50: column 4's centre
  REQUIRE(at[4] == Approx(64 + 24.5 * cw));  // iteration 250: the last column's centre
}

TEST_CASE("the report opens with a summary of each run's final numbers", "[report]") {
  fs::path d = fresh("report_summary");
  write(d / "a" / "metrics.jsonl",
        "{\"iteration\":10,\"split\":\"train\",\"lm_loss\":9.5,\"lr\":0.001,\"grad_norm\":1.5,\"tokens_per_s\":900}\n"
        "{\"iteration\":10,\"split\":\"valid\",\"lm_loss\":8.75}\n"
        "{\"iteration\":20,\"split\":\"train\",\"lm_loss\":8.5,\"lr\":0.002,\"grad_norm\":1.0,\"tokens_per_s\":950}\n"
        "{\"iteration\":30,\"split\":\"train\",\"lm_loss\":8.25,\"lr\":0.002,\"grad_norm\":1.0,\"tokens_per_s\":2000}\n"
        "{\"iteration\":30,\"split\":\"valid\",\"lm_loss\":8.875}\n"
        "{\"iteration\":30,\"split\":\"tasks\",\"consumed_tokens\":99,\"lambada_acc\":0.125,\"piqa_acc\":0.5}\n");
  write(d / "a" / "sweep_config.yaml", "num_layers: 2\nhidden_size: 64\nnum_attention_heads: 4\nnum_experts: [4]\n");
  write(d / "b" / "metrics.jsonl",
        "{\"iteration\":5,\"split\":\"train\",\"lm_loss\":7.0,\"lr\":0.001,\"grad_norm\":1.5,\"tokens_per_s\":100}\n");
  RunMetrics a = read_run_metrics((d / "a").string()), b = read_run_metrics((d / "b").string());
  TrainConfig cfg = load_config_file((d / "a" / "sweep_config.yaml").string());
  REQUIRE(a.params_total == count_parameters(cfg, 50257));
  REQUIRE(a.params_active == count_active_parameters(cfg, 50257));
  REQUIRE(a.params_active < a.params_total);
  REQUIRE(b.params_total == -1);  // no checkpoint, no sweep config: not known
  std::string html = html_report({a, b});
  REQUIRE(html.find("class=\"summary\"") < html.find("<svg"));  // at the top
  auto row = [&](const std::string& run) {
    size_t from = html.find("<tr data-run=\"" + run + "\">");
    REQUIRE(from != std::string::npos);
    return html.substr(from, html.find("</tr>", from) - from);
  };
  std::string ra = row("a"), rb = row("b");
  auto has = [](const std::string& r, const std::string& col, const std::string& text) {
    return r.find("<td data-col=\"" + col + "\">" + text + "</td>") != std::string::npos;
  };
  REQUIRE(has(ra, "iteration", "30"));
  REQUIRE(has(ra, "train_loss", "8.2500"));
  REQUIRE(has(ra, "best_valid_loss", "8.7500 (10)"));
  REQUIRE(has(ra, "best_valid_ppl", "6310.69"));  // exp(8.75)
  REQUIRE(has(ra, "final_valid_loss", "8.8750"));
  REQUIRE(has(ra, "final_valid_ppl", "7150.95"));  // exp(8.875)
  REQUIRE(has(ra, "tokens_per_s", "950"));         // the median of 900, 950, 2000
  char params[32];
  std::snprintf(params, sizeof params, "%.2fM", double(a.params_total) / 1e6);
  REQUIRE(has(ra, "params_total", params));
  REQUIRE(captured_strings(ra, R"re(data-col="zero_shot">([^<]+)<)re") == std::vector<std::string>{"0.1250", "0.5000"});
  REQUIRE(html.find("<th>lambada_acc</th><th>piqa_acc</th>") != std::string::npos);
  REQUIRE(has(rb, "train_loss", "7.0000"));
  REQUIRE(has(rb, "final_valid_loss", "&#8211;"));  // no validation
  REQUIRE(captured_strings(rb, R"re(data-col="zero_shot">([^<]+)<)re") ==
          std::vector<std::string>{"&#8211;", "&#8211;"});
}
