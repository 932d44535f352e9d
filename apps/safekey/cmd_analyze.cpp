// `safekey analyze attention` / `safekey analyze probe`: the paper's two analyses on any model and
// any records with U/K offsets (src/safekey/analyze/).
#include <iostream>

#include "cli.h"
#include "model_setup.h"
#include "safekey/analyze/attention_share.h"
#include "safekey/analyze/safety_probe.h"
#include "safekey/train/dataset.h"
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
  auto model = model::load_model(dir);
  apply_adapter_flag(a, model);
  const auto ex = load(a, dir);
  emit(a, analyze::attention_shares(model, ex).to_json());
  return 0;
}

int run_probe(cli::Args& a) {
  const std::string dir = a.required("model");
  auto model = model::load_model(dir);
  apply_adapter_flag(a, model);
  const auto ex = load(a, dir);
  std::vector<int> labels;
  int64_t skipped = 0;
  const auto feats = analyze::end_of_u_features(model, ex, &labels, &skipped);
  analyze::ProbeOptions opt;
  opt.test_fraction = a.f64("test-fraction");
  opt.seed = static_cast<uint64_t>(a.i64("seed"));
  auto r = analyze::linear_probe(feats, labels, opt);
  r.skipped = skipped;
  emit(a, r.to_json());
  return 0;
}

cli::Registrar reg_att({"analyze attention", "share of attention mass that K tokens put on U vs the query X, per layer",
                        "safekey analyze attention --model DIR --data RECORDS [--limit N] [--out FILE.json]",
                        run_attention});
cli::Registrar reg_probe({"analyze probe", "accuracy of a linear probe for the safety label on hidden states at the end of U",
                          "safekey analyze probe --model DIR --data RECORDS [--test-fraction 0.3] [--out FILE.json]",
                          run_probe});

}  // namespace
}  // namespace safekey
