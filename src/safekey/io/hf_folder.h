// Hugging Face model folders: which files belong to the tokenizer, and copying them next to a new
// checkpoint. (Weights: safetensors.h; config.json: model/config.h.)
#pragma once
#include <string>
#include <vector>

namespace safekey::io {

// The tokenizer and generation files save_pretrained / tokenizer.save_pretrained write:
// tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.json, merges.txt,
// added_tokens.json, chat_template.jinja, generation_config.json.
const std::vector<std::string>& tokenizer_file_names();

// Copies tokenizer files into `dst_dir`. `src` is a folder (every known tokenizer file present in
// it is copied; at least tokenizer.json or tokenizer_config.json must exist) or a single file
// (copied under its own name). Returns the file names copied. Errors name the missing path.
std::vector<std::string> copy_tokenizer_files(const std::string& src, const std::string& dst_dir);

}  // namespace safekey::io
