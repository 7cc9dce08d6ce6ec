#include "train/checkpoint_folder.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/error.h"
#include "runtime/file_util.h"

namespace mt::train {
namespace fs = std::filesystem;
namespace {

constexpr const char* kTempMark = ".tmp-";
constexpr double kForeignIdleSeconds = 600;  // a temporary of another host untouched this long is stale

std::string this_host() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

double unix_seconds(fs::file_time_type t) {
  auto sys = std::chrono::file_clock::to_sys(t);
  return std::chrono::duration<double>(sys.time_since_epoch()).count();
}

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// "iter_0000300" -> 300; -1 when the name is not a checkpoint folder's.
int64_t iteration_of(const std::string& name) {
  if (name.size() != 12 || name.rfind("iter_", 0) != 0) return -1;
  int64_t it = 0;
  for (char c : name.substr(5)) {
    if (c < '0' || c > '9') return -1;
    it = it * 10 + (c - '0');
  }
  return it;
}

std::string trim(std::string s) {
  s.erase(s.find_last_not_of(" \n\r\t") + 1);
  s.erase(0, s.find_first_not_of(" \n\r\t"));
  return s;
}

// Bytes under `p` (a file or a folder), for messages.
uintmax_t size_on_disk(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_directory(p, ec)) return fs::file_size(p, ec) == uintmax_t(-1) ? 0 : fs::file_size(p, ec);
  uintmax_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(p, ec))
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  return total;
}

std::string human_bytes(uintmax_t b) {
  char buf[32];
  if (b >= (uintmax_t(1) << 30))
    std::snprintf(buf, sizeof buf, "%.1f GB", double(b) / 1e9);
  else if (b >= (uintmax_t(1) << 20))
    std::snprintf(buf, sizeof buf, "%.1f MB", double(b) / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.1f kB", double(b) / 1e3);
  return buf;
}

// The newest modification time of `p` or anything under it (unix seconds).
double last_change(const fs::path& p) {
  std::error_code ec;
  double newest = unix_seconds(fs::last_write_time(p, ec));
  if (fs::is_directory(p, ec))
    for (const auto& e : fs::recursive_directory_iterator(p, ec))
      newest = std::max(newest, unix_seconds(e.last_write_time(ec)));
  return newest;
}

std::string names_of(const std::vector<CheckpointEntry>& entries, size_t most = 4) {
  std::string out;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i == most) {
      out += ", ... (" + std::to_string(entries.size()) + " in all)";
      break;
    }
    out += (i ? ", " : "") + entries[i].name;
  }
  return out;
}

std::string local_time(double unix_s) {
  std::time_t t = std::time_t(unix_s);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return buf;
}

// What a folder holds that is not a moetrain checkpoint, named for the error; empty when it
// holds nothing (or only what moetrain leaves in a save folder besides checkpoints).
std::string foreign_content(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  auto has = [&](auto pred) { return std::any_of(names.begin(), names.end(), pred); };
  auto starts = [](const std::string& prefix) {
    return [prefix](const std::string& n) { return n.rfind(prefix, 0) == 0; };
  };
  auto ends = [](const std::string& suffix) {
    return [suffix](const std::string& n) {
      return n.size() >= suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
  };
  if (has([](const std::string& n) { return n == "latest_checkpointed_iteration.txt"; }))
    return "a Megatron-LM checkpoint (latest_checkpointed_iteration.txt)";
  if (has(starts("mp_rank_")) || has([](const std::string& n) { return n == "model_optim_rng.pt"; }))
    return "one iteration of a Megatron-LM checkpoint (mp_rank_* / model_optim_rng.pt)";
  if (has(starts("global_step")) || has(starts("zero_to_fp32"))) return "a DeepSpeed checkpoint (global_step*)";
  if (has([](const std::string& n) { return n == "config.json"; }) &&
      (has(ends(".safetensors")) || has(ends(".bin")) || has(ends(".index.json"))))
    return "a Hugging Face model folder (config.json with weights)";
  if (has(ends(".pt")) || has(ends(".pth")) || has(ends(".ckpt"))) return "PyTorch checkpoint files (*.pt)";
  // What moetrain itself leaves in a save folder besides checkpoints (metrics, reports, sweep files,
  // logs, temporaries).
  auto ours = [](const std::string& n) {
    return n == "metrics.jsonl" || n == "metrics-superseded.jsonl" || n == "superseded" || n == "index-cache" ||
           n == "report.html" || n.rfind("sweep_", 0) == 0 ||  // moetrain report, moetrain sweep's run files
           n.find(kTempMark) != std::string::npos || iteration_of(n) >= 0 ||
           (n.size() > 4 && n.substr(n.size() - 4) == ".log");
  };
  std::string others;
  int shown = 0;
  for (const std::string& n : names)
    if (!ours(n) && shown++ < 5) others += (others.empty() ? "" : ", ") + n;
  return others.empty() ? "" : "files that are not a moetrain checkpoint (" + others + ")";
}

// A temporary's writer: "<base>.tmp-<pid>" or "<base>.tmp-<pid>@<host>".
struct TempWriter {
  bool is_temp = false;
  long pid = 0;
  std::string host;  // empty: not recorded (files written by write_file_atomically)
};

TempWriter parse_temporary(const std::string& name) {
  TempWriter w;
  size_t at = name.rfind(kTempMark);
  if (at == std::string::npos) return w;
  std::string rest = name.substr(at + std::strlen(kTempMark));
  size_t host_at = rest.find('@');
  std::string pid = rest.substr(0, host_at);
  if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) return w;
  w.is_temp = true;
  w.pid = std::stol(pid);
  if (host_at != std::string::npos) w.host = rest.substr(host_at + 1);
  return w;
}

bool process_alive(long pid) {
  if (pid <= 0 || pid == long(getpid())) return false;  // our own pid: we have written nothing yet
  return ::kill(pid_t(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

std::vector<CheckpointEntry> list_checkpoints(const std::string& save_dir) {
  std::vector<CheckpointEntry> out;
  std::error_code ec;
  if (!fs::is_directory(save_dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(save_dir)) {
    std::string name = e.path().filename().string();
    int64_t it = iteration_of(name);
    if (it < 0 || !e.is_directory() || !fs::exists(e.path() / "meta.json")) continue;
    CheckpointEntry c{e.path().string(), name, it, 0};
    try {
      c.saved_at = nlohmann::json::parse(read_file((e.path() / "meta.json").string())).value("saved_at", 0.0);
    } catch (const std::exception&) {
    }
    if (c.saved_at <= 0) c.saved_at = unix_seconds(fs::last_write_time(e.path() / "meta.json", ec));
    out.push_back(c);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.iteration < b.iteration; });
  return out;
}

CheckpointLookup find_checkpoint(const std::string& path, bool may_be_absent) {
  if (path.empty()) return {};
  fs::path p(path);
  std::error_code ec;
  if (!fs::exists(p, ec)) {
    if (may_be_absent) return {"", "'" + path + "' does not exist yet: starting from scratch"};
    throw Error("'" + path +
                "' does not exist: give a checkpoint folder (iter_XXXXXXX, holding meta.json) or the save folder "
                "that holds them (a typo in the path?)");
  }
  MT_CHECK(
      fs::is_directory(p, ec), "'", path,
      "' is a file: give a checkpoint folder (iter_XXXXXXX, holding meta.json) or the save folder that holds them");
  if (fs::exists(p / "meta.json")) return {p.string(), ""};
  std::string name = p.filename().empty() ? p.parent_path().filename().string() : p.filename().string();
  if (name.rfind("iter_", 0) == 0) {
    std::vector<CheckpointEntry> siblings = list_checkpoints(p.parent_path().string());
    throw Error("'" + path + "' is an incomplete checkpoint (no meta.json: its write was interrupted)" +
                (siblings.empty() ? std::string("")
                                  : "; complete ones beside it: " + names_of(siblings) + " (or give the save folder '" +
                                        p.parent_path().string() + "' to take its latest)"));
  }
  if (fs::exists(p / "latest")) {
    std::string target = trim(read_file((p / "latest").string()));
    MT_CHECK(target.rfind("global_step", 0) != 0, "'", path, "' holds a DeepSpeed checkpoint ('latest' names ", target,
             "): moetrain reads only its own checkpoints (docs/checkpoint-format.md)");
    if (fs::exists(p / target / "meta.json")) return {(p / target).string(), ""};
    std::vector<CheckpointEntry> found = list_checkpoints(p.string());  // for the error only
    throw Error("'" + (p / "latest").string() + "' names checkpoint '" + target +
                "', which does not exist (or is incomplete) in '" + path + "'" +
                (found.empty() ? std::string("")
                               : "; complete checkpoints there: " + names_of(found) + ": pass --load " +
                                     (p / found.back().name).string() + " or delete 'latest' to take the newest"));
  }
  std::vector<CheckpointEntry> found = list_checkpoints(p.string());
  if (!found.empty()) {  // no `latest` (deleted, lost in a copy): the newest complete checkpoint, by time
    auto newest = std::max_element(found.begin(), found.end(), [](const auto& a, const auto& b) {
      return a.saved_at != b.saved_at ? a.saved_at < b.saved_at : a.iteration < b.iteration;
    });
    return {newest->path, "'" + path + "' has no 'latest' file: taking its newest complete checkpoint, " +
                              newest->name + " (written " + local_time(newest->saved_at) + "; " +
                              std::to_string(found.size()) + " in the folder)"};
  }
  std::string foreign = foreign_content(p);
  MT_CHECK(foreign.empty(), "'", path, "' holds ", foreign,
           ", not a moetrain checkpoint: give a folder written by `moetrain train` (docs/checkpoint-format.md)");
  return {"", "no checkpoint in '" + path + "' yet: starting from scratch"};
}

std::string temporary_suffix() {
  return std::string(kTempMark) + std::to_string(::getpid()) + "@" + this_host();
}

std::vector<std::string> remove_stale_temporaries(const std::string& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return removed;
  std::string host = this_host();
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    TempWriter w = parse_temporary(name);
    if (!w.is_temp) continue;
    bool local = w.host.empty() || w.host == host;
    bool stale = local ? !process_alive(w.pid) : now_unix() - last_change(e.path()) > kForeignIdleSeconds;
    if (!stale) continue;
    uintmax_t bytes = size_on_disk(e.path());
    fs::remove_all(e.path(), ec);
    if (!ec) removed.push_back(name + " (" + human_bytes(bytes) + ")");
  }
  return removed;
}

std::vector<std::string> claim_save_folder(const std::string& save_dir, int64_t start, const std::string& loaded,
                                           bool supersede) {
  std::vector<CheckpointEntry> all = list_checkpoints(save_dir), later;
  for (const CheckpointEntry& c : all)
    if (c.iteration > start) later.push_back(c);
  if (later.empty()) return {};
  const std::string flag = "--supersede-later-checkpoints";
  if (!supersede) {
    if (loaded.empty())
      throw Error("save folder '" + save_dir + "' already holds checkpoints (" + names_of(later) +
                  ") and this run starts from scratch: writing into it would mix two runs. Resume them with --load " +
                  save_dir + ", save this run elsewhere (--save " + save_dir + "-2), or pass " + flag +
                  " to start the folder over (its checkpoints move to " + save_dir +
                  "/superseded/; nothing is deleted)");
    throw Error("save folder '" + save_dir + "' holds checkpoints later than iteration " + std::to_string(start) +
                ", where this run starts (from " + loaded + "): " + names_of(later) +
                ". Writing into it would mix two histories. Save this run elsewhere (--save " + save_dir +
                "-2), or pass " + flag + " to continue '" + save_dir + "' from iteration " + std::to_string(start) +
                " (the later checkpoints move to " + save_dir + "/superseded/; nothing is deleted)");
  }
  char stamp[32];
  std::time_t t = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&t));
  fs::path dest = fs::path(save_dir) / "superseded" / stamp;
  fs::create_directories(dest);
  for (const CheckpointEntry& c : later) fs::rename(c.path, dest / c.name);
  // `latest` names what the folder holds now: the newest checkpoint left (none: no `latest`).
  std::vector<CheckpointEntry> left = list_checkpoints(save_dir);
  fs::path latest = fs::path(save_dir) / "latest";
  if (left.empty())
    fs::remove(latest);
  else
    write_file_atomically(latest.string(), left.back().name + "\n");
  return {"moved " + std::to_string(later.size()) + " checkpoint(s) later than iteration " + std::to_string(start) +
          " (" + names_of(later) + ") into " + dest.string() + " (supersede_later_checkpoints): '" + save_dir +
          "' continues from iteration " + std::to_string(start)};
}

void apply_retention(const std::string& save_dir, const std::string& written, int64_t keep_last_n) {
  if (keep_last_n <= 0) return;
  std::vector<CheckpointEntry> all = list_checkpoints(save_dir);
  std::string written_name = fs::path(written).filename().string();
  auto w = std::find_if(all.begin(), all.end(), [&](const auto& c) { return c.name == written_name; });
  if (w == all.end()) return;
  std::string latest;
  if (fs::exists(fs::path(save_dir) / "latest")) latest = trim(read_file((fs::path(save_dir) / "latest").string()));
  std::vector<CheckpointEntry> older;  // strictly older by iteration and not newer in time
  for (const CheckpointEntry& c : all)
    if (c.name != written_name && c.name != latest && c.iteration < w->iteration && c.saved_at <= w->saved_at + 1.0)
      older.push_back(c);
  // newest first: keep keep_last_n - 1 of them beside the one just written
  std::sort(older.begin(), older.end(), [](const auto& a, const auto& b) { return a.iteration > b.iteration; });
  for (size_t i = size_t(keep_last_n - 1); i < older.size(); ++i) fs::remove_all(older[i].path);
}

int64_t supersede_metrics_rows(const std::string& metrics_path, int64_t start) {
  std::error_code ec;
  if (metrics_path.empty() || !fs::is_regular_file(metrics_path, ec)) return 0;
  std::istringstream in(read_file(metrics_path));
  std::string kept, moved;
  int64_t n_moved = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    int64_t it = -1;
    try {
      it = nlohmann::json::parse(line).value("iteration", int64_t(-1));
    } catch (const nlohmann::json::exception&) {
      it = -1;  // a line cut by a kill: not part of any history
    }
    if (it >= 0 && it <= start) {
      kept += line + "\n";
    } else {
      moved += line + "\n";
      ++n_moved;
    }
  }
  if (n_moved == 0) return 0;
  fs::path p(metrics_path);
  fs::path superseded = p.parent_path() / (p.stem().string() + "-superseded" + p.extension().string());
  {  // first keep the rows elsewhere, then rewrite the file: a kill in between duplicates, never loses
    std::ofstream out(superseded, std::ios::app);
    MT_CHECK(out && (out << moved) && out.flush(), "cannot write '", superseded.string(), "' (disk full?)");
  }
  write_file_atomically(metrics_path, kept);
  return n_moved;
}

}  // namespace mt::train
