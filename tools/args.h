// A small flag parser shared by the subcommands: --name VALUE, --name=VALUE, boolean --flag,
// list flags that take every value up to the next flag (Megatron style: --json-keys text title),
// positional arguments; unknown flags are errors that list the valid ones.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/text_util.h"

namespace mt::cli {

class ArgParser {
 public:
  ArgParser(std::string command, std::vector<std::string> value_flags, std::vector<std::string> bool_flags,
            std::vector<std::string> list_flags = {})
      : command_(std::move(command)),
        value_flags_(value_flags.begin(), value_flags.end()),
        bool_flags_(bool_flags.begin(), bool_flags.end()),
        list_flags_(list_flags.begin(), list_flags.end()) {}

  void parse(const std::vector<std::string>& args) {
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      std::string name, value;
      bool has_value = split_flag(a, name, value);
      if (name.empty()) {
        positional_.push_back(a);
        continue;
      }
      if (list_flags_.count(name)) {
        std::vector<std::string>& list = lists_[name];
        if (has_value) list.push_back(value);
        while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) list.push_back(args[++i]);
        MT_CHECK(!list.empty(), "--", name, " needs at least one value");
      } else if (bool_flags_.count(name)) {
        MT_CHECK(!has_value, "--", name, " takes no value");
        bools_.insert(name);
      } else if (value_flags_.count(name)) {
        if (!has_value) {
          MT_CHECK(i + 1 < args.size(), "--", name, " needs a value");
          value = args[++i];
        }
        values_[name] = value;
      } else if (pass_unknown_) {  // a config override: it and its values, for apply_overrides
        rest_.push_back(a);
        while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0 && !is_config_file(args[i + 1]))
          rest_.push_back(args[++i]);
      } else {
        std::string valid;
        for (const auto& f : value_flags_) valid += " --" + f;
        for (const auto& f : bool_flags_) valid += " --" + f;
        for (const auto& f : list_flags_) valid += " --" + f;
        throw Error("unknown option '" + a + "'; valid options:" + valid + " (see `moetrain " + command_ + " --help`)");
      }
    }
  }
  bool flag(const std::string& name) const { return bools_.count(name) > 0; }
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  int64_t get_int(const std::string& name, int64_t fallback) const {
    if (!has(name)) return fallback;
    const std::string& v = values_.at(name);
    try {
      size_t used = 0;
      int64_t x = std::stoll(v, &used);
      if (used == v.size()) return x;
    } catch (const std::exception&) {
    }
    throw Error("--" + name + " needs an integer, got '" + v + "'");
  }
  double get_double(const std::string& name, double fallback) const {
    if (!has(name)) return fallback;
    const std::string& v = values_.at(name);
    try {
      size_t used = 0;
      double x = std::stod(v, &used);
      if (used == v.size()) return x;
    } catch (const std::exception&) {
    }
    throw Error("--" + name + " needs a number, got '" + v + "'");
  }
  // Commands that take a training config (gradcheck, trace): flags they do not know are config
  // overrides (--num-experts 4 8), kept with their values in rest() instead of refused.
  void pass_unknown_flags() { pass_unknown_ = true; }
  const std::vector<std::string>& rest() const { return rest_; }
  std::vector<std::string> get_list(const std::string& name, std::vector<std::string> fallback = {}) const {
    auto it = lists_.find(name);
    return it == lists_.end() ? fallback : it->second;
  }
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::string command_;
  std::set<std::string> value_flags_, bool_flags_, list_flags_, bools_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> lists_;
  static bool is_config_file(const std::string& a) {  // the command's CONFIG.yaml, not a flag's value
    auto ends = [&](const char* ext) {
      std::string e = ext;
      return a.size() > e.size() && a.compare(a.size() - e.size(), e.size(), e) == 0;
    };
    return ends(".yaml") || ends(".yml");
  }
  std::vector<std::string> positional_, rest_;
  bool pass_unknown_ = false;
};

}  // namespace mt::cli
