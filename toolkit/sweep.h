// YAML experiment sweeps (`moetrain sweep`). A sweep file names a base config and how runs differ:
//
//   base: ../tiny-moe.yaml              # relative to the sweep file
//   name: cf-experts                    # default: the file's stem
//   output: runs/sweeps/${sweep}        # the sweep's folder (default runs/sweeps/<name>)
//   set: {train_iters: 100}             # overrides for every run
//   grid:                               # every combination (the last key varies fastest)
//     moe_train_capacity_factor: [0.5, 1.0, 2.0]
//     num_experts: [4, 8]
//   zip:                                # values that move together (equal lengths)
//     lr: [1.0e-3, 3.0e-3]
//     min_lr: [1.0e-4, 3.0e-4]
//   runs:                               # a plain list of override sets (a `name:` is allowed)
//     - {mlp_type: standard}
//     - {mlp_type: residual, name: pr-moe}
//   run_name: "cf${moe_train_capacity_factor}-e${num_experts}"   # default: key=value joined by _
//
// Runs = runs x zip x grid (each absent part counts once). Values may use ${key} (any override
// of the run), ${name}, ${sweep}, ${output}, ${index}. Every run saves to <output>/<name>/ (its
// `save`, also its `load`: an interrupted run resumes) and gets <output>/<name>/sweep_config.yaml,
// the effective config `moetrain train` reads. Everything is checked before anything runs:
// unknown keys (with the nearest one), values of the wrong type, empty axes, zip axes of
// different lengths, two runs with one name, a run folder holding a different config.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "train/config.h"

namespace mt::toolkit {

struct SweepRun {
  int index = 0;
  std::string name;
  std::vector<std::pair<std::string, std::string>> overrides;  // key, value as written (lists "a b")
  train::TrainConfig config;                                   // base + overrides; save = load = dir
  std::string dir;                                             // <output>/<name>
};

struct Sweep {
  std::string name, file, output;
  std::vector<SweepRun> runs;
};

// Parses and expands a sweep file; throws on any problem (file:key named).
Sweep load_sweep(const std::string& path, int64_t ranks = 1);

// What a run folder says about its run.
struct RunStatus {
  std::string state;  // "not started", "running", "interrupted", "finished", "failed"
  std::string error;  // the last error line of a failed run
};
RunStatus run_status(const std::string& dir);

// Writes <dir>/sweep_config.yaml and <dir>/sweep_overrides.json (refusing a folder that holds a
// different config) and returns the command that trains the run.
std::string prepare_run(const SweepRun& run, const std::string& moetrain, const std::string& launcher);

// Runs every run not finished yet, one after another (an interrupted one resumes); returns the
// number that failed. Progress on stdout; each run's output in <dir>/train.log.
int run_sweep(const Sweep& sweep, const std::string& moetrain, const std::string& launcher);

// A Slurm array job script running one run per array task (written to <output>/sweep.slurm,
// with <output>/commands.txt); returns its path.
std::string emit_slurm(const Sweep& sweep, const std::string& moetrain, const std::string& launcher);

// --collect: one row per run folder under `dir`: overrides, final train and validation loss,
// zero-shot metrics, parameters (total, active), tokens/s, status.
struct SweepTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};
SweepTable collect_sweep(const std::string& dir);
std::string to_markdown(const SweepTable& t);
std::string to_csv(const SweepTable& t);

}  // namespace mt::toolkit
