// The save folder as a whole: which checkpoint `--load` means, what a run may write next to, what
// retention may delete, and the temporaries a killed writer left behind. One checkpoint's own
// files are train/checkpoint.h; docs/checkpoint-format.md ("Save folders") states the rules:
//  - `--load PATH` takes a checkpoint folder, or a save folder's `latest`, or (no `latest`) the
//    newest complete checkpoint in it; an empty folder, or an absent one equal to `--save`, starts
//    fresh; anything else (a missing path, a Megatron/DeepSpeed/Hugging Face folder, a file) is an
//    error naming what was found.
//  - A run never writes into a folder that holds checkpoints later than its start (another
//    history): it stops with the ways out, one of which (`supersede_later_checkpoints`) moves
//    them into <save>/superseded/ and continues the folder from the run's start.
//  - keep_last_n deletes only checkpoints older than the one just written (by iteration and by
//    time): never the one `latest` names nor anything newer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mt::train {

// A complete checkpoint folder (iter_XXXXXXX with its meta.json) of a save folder.
struct CheckpointEntry {
  std::string path;       // <save>/iter_XXXXXXX
  std::string name;       // iter_XXXXXXX
  int64_t iteration = 0;  // from the folder's name
  double saved_at = 0;    // meta.json's saved_at (unix seconds); older checkpoints: the file's mtime
};

// The complete checkpoints directly in `save_dir`, by iteration (empty when the folder is absent).
std::vector<CheckpointEntry> list_checkpoints(const std::string& save_dir);

// What a path given to --load (or --load-teacher, generate, eval, inspect) holds.
struct CheckpointLookup {
  std::string checkpoint;  // the checkpoint folder to read; empty: nothing to resume (a fresh start)
  std::string note;        // one line for the user when the choice was not the obvious one
};

// Resolves `path` to one checkpoint folder. Throws a clear error for a path that does not exist
// (unless `may_be_absent`), a file, an incomplete checkpoint, a `latest` naming a missing folder
// and a folder of something else (Megatron, DeepSpeed, Hugging Face, ...).
CheckpointLookup find_checkpoint(const std::string& path, bool may_be_absent = false);

// The writer of a temporary is named in it: "<name>.tmp-<pid>" (files) or "<name>.tmp-<pid>@<host>"
// (checkpoint folders). These build and read such names.
std::string temporary_suffix();
// Removes the temporaries in `dir` whose writer is gone (its process ended on this host; on another
// host: untouched for 10 minutes). Returns one "name (size)" per removed entry.
std::vector<std::string> remove_stale_temporaries(const std::string& dir);

// Before a run writes into `save_dir`, starting at iteration `start` (from `loaded`, a checkpoint
// folder, or from scratch when empty): checkpoints there later than `start` belong to another
// history. Without `supersede`, throws the error with the ways out; with it, moves them into
// <save>/superseded/ and points `latest` at `loaded` when it lives in `save_dir` (else removes
// `latest`). Returns the lines to print (empty when nothing was done).
std::vector<std::string> claim_save_folder(const std::string& save_dir, int64_t start, const std::string& loaded,
                                           bool supersede);

// keep_last_n after `written` (a checkpoint just saved and named by `latest`): deletes the oldest
// of the checkpoints older than it, by iteration and by time, beyond `keep_last_n` in all.
void apply_retention(const std::string& save_dir, const std::string& written, int64_t keep_last_n);

// A run that starts at iteration `start` makes one history of the metrics file: rows logged after
// `start` by an earlier run of the folder (the iterations after its last checkpoint, or a whole
// run that this one starts over) move to <name>-superseded.jsonl. Returns how many rows moved.
int64_t supersede_metrics_rows(const std::string& metrics_path, int64_t start);

}  // namespace mt::train
