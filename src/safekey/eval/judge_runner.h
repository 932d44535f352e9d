// Runs a judge over every response of a results file: a pool of `concurrency` worker threads, an
// on-disk cache of judge replies keyed by SHA-256(judge, model, prompt text) so a rerun never pays
// twice, and the labels written back per item (docs/evaluation.md, "Label fields"):
//   item["judge"]["<judge>:<part>"] = {judge, model, part, verdicts: [one per response]}
//   meta_info["judges"]["<judge>:<part>"] = {judge, model, part, endpoint, rule, counts}
// Auth failures (401/403) and an unreachable endpoint stop the run with that error (what was
// judged so far stays in the cache); any other failure of one request is recorded as a verdict
// with status "error".
#pragma once
#include <string>

#include "safekey/eval/judges.h"
#include "safekey/eval/results.h"
#include "safekey/net/chat_client.h"
#include "safekey/util/json.h"

namespace safekey::eval {

struct JudgeRunOptions {
  Part part = Part::kResponse;
  int concurrency = 4;
  std::string cache_dir;           // "" = no cache
  net::ChatClientOptions client;   // endpoint, key, retries (model judges only)
  bool progress = true;            // a progress line on stderr
};

struct JudgeCounts {
  int64_t total = 0, ok = 0, unparsed = 0, error = 0;
  int64_t harmful = 0, refused = 0;
  int64_t full_compliance = 0, full_refusal = 0, partial_refusal = 0;
  int64_t cached = 0, requests = 0;
  json to_json() const;
};

std::string label_key(const std::string& judge, Part part);
JudgeCounts run_judge(json& doc, const Judge& judge, const JudgeRunOptions& opts);

// The cache, exposed for tests and `annotate --method judge`.
class ReplyCache {
 public:
  explicit ReplyCache(std::string dir) : dir_(std::move(dir)) {}
  bool enabled() const { return !dir_.empty(); }
  static std::string key(const std::string& judge, const std::string& model, const std::string& prompt);
  bool get(const std::string& key, std::string* reply) const;
  void put(const std::string& key, const std::string& judge, const std::string& model,
           const std::string& reply) const;

 private:
  std::string dir_;
};

std::string sha256_hex(const std::string& data);

}  // namespace safekey::eval
