// The save folder as a user's runs meet it (train/checkpoint_folder.h): a lost `latest`, a
// rollback into a folder with later checkpoints, retention, a mistyped or foreign --load, the
// temporaries of killed writes, metrics rows of a superseded history, a resume of a finished run.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "train/checkpoint.h"
#include "train/checkpoint_folder.h"
#include "train/trainer.h"
#include "training_fixtures.h"

using namespace mt;
using namespace mt::train;
using namespace trainfix;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

// The checkpoint folders directly in `dir`, sorted.
std::vector<std::string> folders(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("iter_", 0) == 0)
      names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The iterations of the metrics file's rows of one split, in file order.
std::vector<int64_t> logged_iterations(const fs::path& metrics, const std::string& split = "train") {
  std::vector<int64_t> out;
  std::istringstream in(slurp(metrics));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);  // a line cut by a kill: discarded
    if (!j.is_discarded() && j.value("split", "") == split) out.push_back(j["iteration"].get<int64_t>());
  }
  return out;
}

TrainConfig small_run(const fs::path& dir, int64_t iters, int64_t save_interval) {
  TrainConfig c = tiny_run(dir);
  c.num_layers = 1;
  c.train_iters = iters;
  c.save_interval = save_interval;
  c.lr_warmup_iters = 1;
  c.lr_decay_iters = 100;  // one schedule for every length the tests train to (resumes check it)
  c.eval_iters = 0;
  return c;
}

// A fake complete checkpoint folder (only what the folder rules read: meta.json).
void fake_checkpoint(const fs::path& save, const std::string& name, double saved_at) {
  fs::create_directories(save / name);
  std::ofstream(save / name / "meta.json")
      << nlohmann::json{{"format", "moetrain-checkpoint-v1"}, {"saved_at", saved_at}};
}

// A process id that was just in use and is not any more.
long dead_pid() {
  pid_t child = fork();
  if (child == 0) _exit(0);
  int status = 0;
  waitpid(child, &status, 0);
  return long(child);
}

std::string hostname() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

}  // namespace

TEST_CASE("a save folder without `latest` resumes from its newest checkpoint, never starts over",
          "[train][checkpoint][save_folder]") {
  fs::path dir = fresh_dir("no_latest");
  TrainConfig cfg = small_run(dir, 4, 2);
  run_training(cfg, quiet_options());
  fs::remove(dir / "ckpt" / "latest");  // deleted by hand, lost in a copy, or a kill before its update

  CheckpointLookup found = find_checkpoint(cfg.save);
  REQUIRE(found.checkpoint == (dir / "ckpt" / "iter_0000004").string());
  REQUIRE_THAT(found.note, Contains("no 'latest'") && Contains("iter_0000004"));

  cfg.load = cfg.save;
  cfg.train_iters = 6;
  TrainSummary s = run_training(cfg, quiet_options());
  REQUIRE(s.iterations == 6);
  REQUIRE(logged_iterations(cfg.metrics_file) == std::vector<int64_t>{1, 2, 3, 4, 5, 6});  // continued, once each
  REQUIRE(folders(dir / "ckpt") == std::vector<std::string>{"iter_0000002", "iter_0000004", "iter_0000006"});

  // Newest by the time written, not by the highest number (two histories in one folder).
  fs::path other = dir / "by_time";
  fake_checkpoint(other, "iter_0000600", 1000.0);
  fake_checkpoint(other, "iter_0000410", 2000.0);
  REQUIRE(find_checkpoint(other.string()).checkpoint == (other / "iter_0000410").string());
  fs::remove_all(dir);
}

TEST_CASE("a run never writes over a later history: refused with the ways out, or superseded on request",
          "[train][checkpoint][save_folder]") {
  fs::path dir = fresh_dir("rollback");
  TrainConfig cfg = small_run(dir, 6, 2);
  cfg.keep_last_n = 2;
  run_training(cfg, quiet_options());
  REQUIRE(folders(dir / "ckpt") == std::vector<std::string>{"iter_0000004", "iter_0000006"});

  // Rolling back after a loss spike: --load runs/x/iter_0000004 --save runs/x.
  TrainConfig back = cfg;
  back.load = (dir / "ckpt" / "iter_0000004").string();
  back.train_iters = 8;
  REQUIRE_THROWS_WITH(run_training(back, quiet_options()),
                      Contains("later than iteration 4") && Contains("iter_0000006") &&
                          Contains("--supersede-later-checkpoints") && Contains("--save"));
  REQUIRE(folders(dir / "ckpt") == std::vector<std::string>{"iter_0000004", "iter_0000006"});  // untouched
  REQUIRE(slurp(dir / "ckpt" / "latest") == "iter_0000006\n");

  // A run from scratch into the same folder.
  TrainConfig scratch = cfg;
  REQUIRE_THROWS_WITH(run_training(scratch, quiet_options()),
                      Contains("starts from scratch") && Contains("--load " + cfg.save));

  // The user asks to continue the folder from iteration 4: iter_0000006 moves aside, nothing is lost,
  // and retention keeps what this run wrote.
  back.supersede_later_checkpoints = true;
  TrainSummary s = run_training(back, quiet_options());
  REQUIRE(s.iterations == 8);
  REQUIRE(folders(dir / "ckpt") == std::vector<std::string>{"iter_0000006", "iter_0000008"});
  REQUIRE(slurp(dir / "ckpt" / "latest") == "iter_0000008\n");
  int moved = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir / "ckpt" / "superseded"))
    moved += e.path().filename() == "iter_0000006" && fs::exists(e.path() / "model.safetensors");
  REQUIRE(moved == 1);
  // The metrics file holds one history: 1..4 of the first run, then 5..8 of this one.
  REQUIRE(logged_iterations(cfg.metrics_file) == std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8});
  REQUIRE(logged_iterations(dir / "metrics-superseded.jsonl") == std::vector<int64_t>{5, 6});
  fs::remove_all(dir);
}

TEST_CASE("retention never deletes the checkpoint just written nor anything newer",
          "[train][checkpoint][save_folder]") {
  fs::path save = fresh_dir("retention");
  fake_checkpoint(save, "iter_0000200", 100.0);
  fake_checkpoint(save, "iter_0000400", 200.0);
  fake_checkpoint(save, "iter_0000600", 300.0);  // another history, written before the rollback
  fake_checkpoint(save, "iter_0000410", 400.0);
  fake_checkpoint(save, "iter_0000420", 500.0);
  std::ofstream(save / "latest") << "iter_0000420\n";
  apply_retention(save.string(), (save / "iter_0000420").string(), 2);
  REQUIRE(folders(save) == std::vector<std::string>{"iter_0000410", "iter_0000420", "iter_0000600"});
  apply_retention(save.string(), (save / "iter_0000420").string(), 1);
  REQUIRE(folders(save) == std::vector<std::string>{"iter_0000420", "iter_0000600"});
  fs::remove_all(save);
}

TEST_CASE("load accepts only moetrain checkpoints: missing paths and foreign folders are errors",
          "[train][checkpoint][save_folder][errors]") {
  fs::path dir = fresh_dir("load_paths");
  REQUIRE_THROWS_WITH(find_checkpoint((dir / "runs" / "tiny-mo").string()), Contains("does not exist"));
  REQUIRE(find_checkpoint((dir / "runs" / "new").string(), true).checkpoint.empty());  // absent, equal to --save

  fs::create_directories(dir / "empty");
  REQUIRE(find_checkpoint((dir / "empty").string()).checkpoint.empty());

  fs::create_directories(dir / "megatron");
  std::ofstream(dir / "megatron" / "latest_checkpointed_iteration.txt") << "100\n";
  REQUIRE_THROWS_WITH(find_checkpoint((dir / "megatron").string()), Contains("Megatron-LM checkpoint"));

  fs::create_directories(dir / "deepspeed" / "global_step100");
  std::ofstream(dir / "deepspeed" / "latest") << "global_step100";
  REQUIRE_THROWS_WITH(find_checkpoint((dir / "deepspeed").string()), Contains("DeepSpeed"));

  fs::create_directories(dir / "hf");
  std::ofstream(dir / "hf" / "config.json") << "{}";
  std::ofstream(dir / "hf" / "model.safetensors") << "x";
  REQUIRE_THROWS_WITH(find_checkpoint((dir / "hf").string()), Contains("Hugging Face"));

  fs::create_directories(dir / "other");
  std::ofstream(dir / "other" / "notes.txt") << "x";
  REQUIRE_THROWS_WITH(find_checkpoint((dir / "other").string()), Contains("notes.txt"));

  std::ofstream(dir / "file") << "x";
  REQUIRE_THROWS_WITH(find_checkpoint((dir / "file").string()), Contains("is a file"));

  fs::create_directories(dir / "save" / "iter_0000002.tmp-1@h");
  fs::create_directories(dir / "save" / "iter_0000002");  // renamed but its meta.json is missing
  REQUIRE_THROWS_WITH(find_checkpoint((dir / "save" / "iter_0000002").string()), Contains("incomplete"));

  // The trainer: a mistyped --load is an error, an absent --load equal to --save starts fresh.
  TrainConfig cfg = small_run(dir, 1, 0);
  cfg.load = (dir / "ckp").string();
  REQUIRE_THROWS_WITH(run_training(cfg, quiet_options()), Contains("does not exist"));
  cfg.load = cfg.save;
  REQUIRE(run_training(cfg, quiet_options()).iterations == 1);
  fs::remove_all(dir);
}

TEST_CASE("temporaries of killed writes are removed at the next start, live ones are kept",
          "[train][checkpoint][save_folder]") {
  fs::path save = fresh_dir("temporaries");
  long gone = dead_pid();
  std::string host = hostname();
  auto make = [&](const std::string& name) {
    fs::create_directories(save / name);
    std::ofstream(save / name / "model.safetensors") << std::string(1000, 'x');
  };
  make("iter_0000400.tmp-" + std::to_string(gone) + "@" + host);  // writer on this host, gone
  make("iter_0000300.tmp-" + std::to_string(gone));               // an older name: pid only
  std::ofstream(save / ("latest.tmp-" + std::to_string(gone))) << "iter_0000400\n";
  make("iter_0000500.tmp-" + std::to_string(getppid()) + "@" + host);  // writer alive: kept
  make("iter_0000600.tmp-1234@another-node");                          // another host, just written: kept
  make("iter_0000700.tmp-1234@another-node");                          // another host, untouched for an hour
  auto hour_ago = fs::file_time_type::clock::now() - std::chrono::hours(1);
  fs::last_write_time(save / "iter_0000700.tmp-1234@another-node", hour_ago);
  fs::last_write_time(save / "iter_0000700.tmp-1234@another-node" / "model.safetensors", hour_ago);

  std::vector<std::string> removed = remove_stale_temporaries(save.string());
  REQUIRE(removed.size() == 4);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(save)) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  REQUIRE(left == std::vector<std::string>{"iter_0000500.tmp-" + std::to_string(getppid()) + "@" + host,
                                           "iter_0000600.tmp-1234@another-node"});
  fs::remove_all(save);
}

TEST_CASE("after a resume, metrics.jsonl holds one history, and a finished run trains nothing",
          "[train][checkpoint][save_folder][metrics]") {
  fs::path dir = fresh_dir("one_history");
  TrainConfig cfg = small_run(dir, 6, 3);
  cfg.eval_interval = 3;
  cfg.eval_iters = 1;
  run_training(cfg, quiet_options());
  // As if the job was killed after iteration 5: iterations 4 and 5 were logged, iter_0000006 not written.
  fs::remove_all(dir / "ckpt" / "iter_0000006");
  std::ofstream(dir / "ckpt" / "latest") << "iter_0000003\n";
  std::ofstream(cfg.metrics_file, std::ios::app) << "{\"iteration\": 6, \"split\": \"tra";  // cut by the kill
  cfg.load = cfg.save;
  run_training(cfg, quiet_options());
  REQUIRE(logged_iterations(cfg.metrics_file) == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  REQUIRE(logged_iterations(cfg.metrics_file, "valid") == std::vector<int64_t>{3, 6});
  REQUIRE(logged_iterations(dir / "metrics-superseded.jsonl") == std::vector<int64_t>{4, 5, 6});

  // Resuming the finished run: nothing trained, nothing re-saved, the metrics untouched.
  auto written = fs::last_write_time(dir / "ckpt" / "iter_0000006" / "meta.json");
  std::string metrics = slurp(cfg.metrics_file);
  TrainSummary s = run_training(cfg, quiet_options());
  REQUIRE(s.iterations == 6);
  REQUIRE(fs::last_write_time(dir / "ckpt" / "iter_0000006" / "meta.json") == written);
  REQUIRE(slurp(cfg.metrics_file) == metrics);
  fs::remove_all(dir);
}
