// Setting one configuration key from a YAML value, as a config file does (type checks, the
// nearest key for a misspelled one, `where` in every error). For tools that build configurations
// from other YAML documents (sweeps).
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "train/config.h"

namespace mt::train {

void apply_yaml_value(TrainConfig& cfg, const std::string& key, const YAML::Node& value, const std::string& where);

}  // namespace mt::train
