// The options of `safekey train` as one table (config/schema.h): each row is a config key, its
// command-line flag, the HF Trainer / reference train/sft.py spellings, the type and default (both
// taken from the TrainConfig field the row is bound to, so they cannot drift), the help text, and
// whether the option defines the run. From it come the flags of `safekey train` (apps/safekey/flags.cpp),
// the YAML / JSON config files and `key=value` overrides (config::Values), TrainConfig::to_json
// (run_config.json, compared on resume) and the options table of docs/training.md
// (`safekey train --print-options-markdown`).
#pragma once
#include "safekey/config/schema.h"
#include "safekey/train/trainer.h"

namespace safekey::train {

// The table. Rows without a key are flags only (--config, --plan, ...).
const config::Schema& train_schema();

// Writes every option that has a key into the TrainConfig field it is bound to.
void apply_values(const config::Values& values, TrainConfig& c);

// The value of an option of a TrainConfig, as the schema types it.
json option_value(const TrainConfig& c, const std::string& key);

}  // namespace safekey::train
