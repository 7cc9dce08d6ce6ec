// The subcommands of the `moetrain` program. Each is a thin layer: parse flags, call a library.
#pragma once

#include <string>
#include <vector>

namespace mt::cli {

using Args = std::vector<std::string>;  // the arguments after the subcommand name

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const Args& args);
};

const std::vector<Command>& commands();

int run_bench(const Args& args);
int run_tokenize(const Args& args);
int run_preprocess(const Args& args);
int run_train(const Args& args);
int run_plan(const Args& args);
int run_generate(const Args& args);
int run_inspect(const Args& args);
int run_eval(const Args& args);
int run_sweep(const Args& args);
int run_report(const Args& args);
int run_gradcheck(const Args& args);
int run_trace(const Args& args);
int run_upcycle(const Args& args);

}  // namespace mt::cli
