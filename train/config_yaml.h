// Setting one configuration key from a YAML value, as a config file does (type checks, the
// nearest key for a misspelled one, `where` in every error), and reading a YAML file with errors
// that name it. For tools that build configurations from other YAML documents (sweeps).
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "train/config.h"

namespace mt::train {

void apply_yaml_value(TrainConfig& cfg, const std::string& key, const YAML::Node& value, const std::string& where);

// A YAML file's document; every error names the file (`what`: "config file", "sweep file"): a
// path that is a folder or cannot be read, invalid YAML (file:line), a key given twice in one
// mapping at any depth (file:line, both lines; yaml-cpp would keep both and the last would win).
YAML::Node load_yaml_file(const std::string& path, const std::string& what);

}  // namespace mt::train
