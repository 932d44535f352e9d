// `safekey analyze attention` / `safekey analyze probe`: the paper's two analyses on any model and
// any records with U/K offsets (src/safekey/analyze/).
#include <iostream>

#include "cli.h"
#include "model_setup.h"
#include "safekey/analyze/attention_share.h"
#include "safekey/analyze/generated_u.h"
#include "safekey/analyze/safety_probe.h"
#include "safekey/text/tokenizer.h"
#include "safekey/train/dataset.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey {
namespace {

std::vector<data::TokenizedExample> load(cli::Args& a, const std::string& model_dir) {
  auto ds = train::load_record_examples(a.required("data"), model_dir, a.list("benign-sources"), false, "", 8192, false);
  const int64_t limit = a.i64("limit");
  if (limit > 0 && static_cast<int64_t>(ds.examples.size()) > limit) ds.examples.resize(static_cast<size_t>(limit));
  return std::move(ds.examples);
}

void emit(cli::Args& a, const json& j) {
  std::cout << j.dump(2) << "\n";
  if (!a.str("out").empty()) write_file_atomic(a.str("out"), j.dump(2) + "\n");
}

int run_attention(cli::Args& a) {
  const std::string dir = a.required("model");
  auto model = model::load_model(dir, torch::kFloat32, compute_device(a));
  apply_adapter_flag(a, model);
  const auto ex = load(a, dir);
  emit(a, analyze::attention_shares(model, ex).to_json());
  return 0;
}

analyze::ProbeOptions probe_options(cli::Args& a) {
  analyze::ProbeOptions opt;
  opt.test_fraction = a.f64("test-fraction");
  opt.seed = static_cast<uint64_t>(a.i64("seed"));
  return opt;
}

// --u-out: one line per record, in record order.
void write_generated_u(const std::string& path, const std::vector<data::TokenizedExample>& ex,
                       const analyze::GeneratedUFeatures& g) {
  std::string out;
  size_t row = 0;
  for (size_t i = 0; i < ex.size(); ++i) {
    json j = {{"record", ex[i].source}, {"unsafe", ex[i].unsafe}, {"u", nullptr}, {"u_tokens", 0}};
    if (row < g.examples.size() && g.examples[row] == i) {
      j["u"] = g.texts[row];
      j["u_tokens"] = g.tokens[row];
      ++row;
    }
    out += j.dump() + "\n";
  }
  write_file_atomic(path, out);
}

int run_probe_generated(cli::Args& a, model::DecoderModel& model, const std::string& dir,
                        const std::vector<data::TokenizedExample>& ex) {
  const auto tok = text::Tokenizer::from_file(dir);
  analyze::GeneratedUOptions go;
  go.max_u_tokens = a.i64("max-u-tokens");
  go.batch_size = a.i64("batch-size");
  go.repetition_penalty = a.f64("repetition-penalty");
  const auto g = analyze::generated_end_of_u_features(model, tok, ex, go);
  if (!a.str("u-out").empty()) write_generated_u(a.str("u-out"), ex, g);
  auto r = analyze::linear_probe(g.features, g.labels, probe_options(a));
  r.skipped = g.skipped;
  json j = r.to_json();
  j["u"] = "generated";
  double mean_tokens = 0;
  for (int64_t t : g.tokens) mean_tokens += static_cast<double>(t) / static_cast<double>(g.tokens.size());
  j["mean_u_tokens"] = mean_tokens;
  emit(a, j);
  return 0;
}

int run_probe(cli::Args& a) {
  const std::string dir = a.required("model");
  auto model = model::load_model(dir, torch::kFloat32, compute_device(a));
  apply_adapter_flag(a, model);
  const auto ex = load(a, dir);
  if (a.on("generated")) return run_probe_generated(a, model, dir, ex);
  SK_CHECK(a.str("u-out").empty(), "analyze probe: --u-out needs --generated (the reference U is in the records)");
  std::vector<int> labels;
  int64_t skipped = 0;
  const auto feats = analyze::end_of_u_features(model, ex, &labels, &skipped);
  auto r = analyze::linear_probe(feats, labels, probe_options(a));
  r.skipped = skipped;
  emit(a, r.to_json());
  return 0;
}

cli::Registrar reg_att({"analyze attention", "share of attention mass that K tokens put on U vs the query X, per layer",
                        "safekey analyze attention --model DIR --data RECORDS [--limit N] [--out FILE.json]",
                        run_attention});
cli::Registrar reg_probe({"analyze probe", "accuracy of a linear probe for the safety label on hidden states at the end of U",
                          "safekey analyze probe --model DIR --data RECORDS [--generated [--max-u-tokens 128] [--u-out U.jsonl]]\n"
                          "                    [--test-fraction 0.3] [--out FILE.json]",
                          run_probe});

}  // namespace
}  // namespace safekey
