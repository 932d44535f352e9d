// `safekey loss` against the reference SafeKey step of every golden model
// (../shared/golden/*/safekey_losses.json, computed with HF transformers; tolerances from its README:
// losses <= 2e-5 abs, logit_C/logit_ctx <= 1e-5 abs, grad norms <= 1e-5 rel, embedding-gradient
// sums <= 2e-5 abs). Runs the real executable, as external checks do.
#include <gtest/gtest.h>

#include <cmath>

#include "safekey/util/file.h"
#include "safekey/util/json.h"
#include "support/support.h"

using namespace safekey;

namespace {

class LossConformance : public ::testing::TestWithParam<std::string> {};

double max_abs_diff(const json& a, const json& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    m = std::max(m, std::fabs(a[i].get<double>() - b[i].get<double>()));
  return m;
}

json run_loss(const std::string& dir, const std::string& batch_path, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"loss", "--model", dir, "--head", dir + "/safety_head.safetensors",
                                   "--batch", batch_path, "--threads", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = test::run_safekey(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return parse_json(r.out, "safekey loss stdout");
}

void check_against_golden(const json& gold, const json& got, const std::string& what) {
  for (const char* key : {"sft_loss", "k_loss", "L_head_C", "L_head_ctx", "head_loss", "total_loss"}) {
    double d = std::fabs(got.at(key).get<double>() - gold.at(key).get<double>());
    std::printf("%s %-12s ours %.9g golden %.9g maxdiff %.3g\n", what.c_str(), key, got.at(key).get<double>(),
                gold.at(key).get<double>(), d);
    EXPECT_LE(d, 2e-5) << what << " " << key;
  }
  for (const char* key : {"logit_C", "logit_ctx"}) {
    double d = max_abs_diff(got.at(key), gold.at(key));
    std::printf("%s %-12s maxdiff %.3g\n", what.c_str(), key, d);
    EXPECT_LE(d, 1e-5) << what << " " << key;
  }
  for (const char* key : {"grad_norm_model_params", "grad_norm_safety_head"}) {
    double g = gold.at(key).get<double>(), o = got.at(key).get<double>();
    double rel = std::fabs(o - g) / std::fabs(g);
    std::printf("%s %-24s ours %.9g golden %.9g rel %.3g\n", what.c_str(), key, o, g, rel);
    EXPECT_LE(rel, 1e-5) << what << " " << key;
  }
  double d = max_abs_diff(got.at("embed_tokens_grad_sum_over_hidden"), gold.at("embed_tokens_grad_sum_over_hidden"));
  std::printf("%s embed_tokens_grad_sum_over_hidden maxdiff %.3g\n", what.c_str(), d);
  EXPECT_LE(d, 2e-5) << what;
  EXPECT_EQ(got.at("num_sft_target_tokens"), gold.at("num_sft_target_tokens"));
  EXPECT_EQ(got.at("num_k_target_tokens"), gold.at("num_k_target_tokens"));
}

TEST_P(LossConformance, ReproducesReferenceStep) {
  const std::string dir = test::golden_dir() + "/" + GetParam();
  SAFEKEY_REQUIRE_DIR(dir);
  json gold = read_json_file(dir + "/safekey_losses.json");
  const std::string tmp = test::make_temp_dir("loss_" + GetParam());
  const std::string batch = tmp + "/batch.json";
  write_file_atomic(batch, gold.at("inputs").dump());
  check_against_golden(gold, run_loss(dir, batch, {}), GetParam() + " truncated-QMM");
  // The reference's own full-length masked pass and gradient checkpointing give the same numbers.
  check_against_golden(gold, run_loss(dir, batch, {"--qmm-pass", "full", "--gradient-checkpointing"}),
                       GetParam() + " full-QMM+ckpt");
}

TEST(LossCommand, BadBatchNamesTheField) {
  const std::string dir = test::golden_dir() + "/qwen2";
  SAFEKEY_REQUIRE_DIR(dir);
  json gold = read_json_file(dir + "/safekey_losses.json");
  json in = gold.at("inputs");
  in["k_mask"][0].erase(in["k_mask"][0].begin());  // one entry short
  const std::string tmp = test::make_temp_dir("loss_bad");
  write_file_atomic(tmp + "/batch.json", in.dump());
  auto r = test::run_safekey({"loss", "--model", dir, "--head", dir + "/safety_head.safetensors", "--batch",
                              tmp + "/batch.json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("k_mask"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("batch.json"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Golden, LossConformance, ::testing::Values("qwen2", "llama", "qwen3"));

}  // namespace
