#include "safekey/train/data_fingerprint.h"

#include <cstdio>

#include "safekey/util/error.h"

namespace safekey::train {

void Fnv64::bytes(const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h_ = (h_ ^ b[i]) * 1099511628211ULL;
}

void Fnv64::ids(const std::vector<int64_t>& v) {
  i64(static_cast<int64_t>(v.size()));
  if (!v.empty()) bytes(v.data(), v.size() * sizeof(int64_t));
}

std::string Fnv64::hex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
  return buf;
}

json DataFingerprint::to_json() const {
  if (empty()) return nullptr;
  return json{{"examples", examples}, {"content", content}, {"epoch_order", epoch_order},
              {"tokenizer", tokenizer}, {"chat_template", chat_template}};
}

DataFingerprint DataFingerprint::from_json(const json& j) {
  DataFingerprint f;
  if (!j.is_object()) return f;
  const std::string where = "trainer_state.json data_fingerprint";
  f.examples = json_get<int64_t>(j, "examples", where);
  f.content = json_get_or<std::string>(j, "content", "", where);
  f.epoch_order = json_get_or<std::string>(j, "epoch_order", "", where);
  f.tokenizer = json_get_or<std::string>(j, "tokenizer", "", where);
  f.chat_template = json_get_or<std::string>(j, "chat_template", "", where);
  return f;
}

std::string hash_examples(const std::vector<data::TokenizedExample>& examples) {
  Fnv64 h;
  h.i64(static_cast<int64_t>(examples.size()));
  for (const auto& ex : examples) {
    h.ids(ex.input_ids);
    h.ids(ex.labels);
    for (int64_t x : {ex.query_len, ex.u_begin, ex.u_end, ex.k_begin, ex.k_end, static_cast<int64_t>(ex.unsafe)})
      h.i64(x);
  }
  return h.hex();
}

std::vector<std::string> fingerprint_changes(const DataFingerprint& saved, const DataFingerprint& now) {
  std::vector<std::string> out;
  auto used = [](const std::string& a, const std::string& b) { return !a.empty() && !b.empty(); };
  if (used(saved.tokenizer, now.tokenizer) && saved.tokenizer != now.tokenizer)
    out.push_back(cat("tokenizer: the model folder's tokenizer.json differs (", saved.tokenizer, " -> ",
                      now.tokenizer, ")"));
  if (used(saved.chat_template, now.chat_template) && saved.chat_template != now.chat_template)
    out.push_back(cat("chat template: the model folder's chat template differs (", saved.chat_template, " -> ",
                      now.chat_template, ")"));
  if (saved.tokenizer.empty() != now.tokenizer.empty())
    out.push_back(cat("data format: the checkpoint trained on ", saved.tokenizer.empty() ? "pre-tokenized" : "text",
                      " records, this run reads ", now.tokenizer.empty() ? "pre-tokenized" : "text", " records"));
  if (saved.examples != now.examples)
    out.push_back(cat("dataset count: ", saved.examples, " -> ", now.examples, " examples"));
  else if (saved.content != now.content)
    out.push_back(cat("dataset content: the tokenized examples differ (", saved.content, " -> ", now.content,
                      "), with the same count (", now.examples, ")"));
  if (saved.examples == now.examples && saved.epoch_order != now.epoch_order)
    out.push_back(cat("epoch order: the example order of the epochs differs (", saved.epoch_order, " -> ",
                      now.epoch_order, ")"));
  return out;
}

}  // namespace safekey::train
