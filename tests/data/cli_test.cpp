// `safekey annotate` through the real executable: success, and one clear error for bad input.
#include <gtest/gtest.h>

#include "safekey/util/file.h"
#include "safekey/util/json.h"
#include "support/support.h"

using namespace safekey;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(AnnotateCli, WritesOffsetsAnnotationAndReport) {
  const std::string dir = test::make_temp_dir("annotate_cli");
  write_file_atomic(dir + "/in.jsonl",
                    R"({"id": "a", "question": "Bake bread?", "response": "<think>Okay, so the user is asking how to bake bread. Hmm, harmless. Fine.</think>Sure.", "source": "4o_rewrite", "extra": [1, 2]})"
                    "\n"
                    R"({"messages": [{"role": "user", "content": "Tea?"}, {"role": "assistant", "content": "<think>The user wants tea facts. They also want history. I can help.</think>Tea."}], "unsafe": 0})"
                    "\n");
  auto r = test::run_safekey({"annotate", "--data", dir + "/in.jsonl", "--out", dir + "/out.jsonl", "--report",
                              dir + "/report.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "annotated 2 of 2 records")) << r.out;
  const std::string out = read_file(dir + "/out.jsonl");
  const size_t nl = out.find('\n');
  json first = parse_json(out.substr(0, nl), "out");
  json second = parse_json(out.substr(nl + 1), "out");
  EXPECT_EQ(first["extra"], json::array({1, 2}));  // unknown fields are kept
  EXPECT_EQ(first["summary_end_idx"], 54);          // "<think>\n" + first sentence
  EXPECT_EQ(first["next_sentence_end_idx"], 69);  // " Hmm, harmless."
  EXPECT_EQ(first["annotation"]["rule"], "user_cue");
  EXPECT_EQ(second["annotation"]["rule"], "user_cue+continuation");
  json report = read_json_file(dir + "/report.json");
  EXPECT_EQ(report["annotated"], 2);
  EXPECT_EQ(report["per_record"][1]["u_sentences"], 2);
}

TEST(AnnotateCli, BadInputGivesOneClearError) {
  const std::string dir = test::make_temp_dir("annotate_cli");
  auto missing = test::run_safekey({"annotate", "--data", dir + "/nope.json", "--out", dir + "/o.json"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(has(missing.err, "error: ") && has(missing.err, dir + "/nope.json")) << missing.err;

  write_file_atomic(dir + "/bad.json", "[\n  {\"question\": \"q\",,}\n]\n");
  auto bad = test::run_safekey({"annotate", "--data", dir + "/bad.json", "--out", dir + "/o.json"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(has(bad.err, dir + "/bad.json:2:20: invalid JSON")) << bad.err;

  write_file_atomic(dir + "/field.jsonl",
                    "{\"question\": \"q\", \"source\": \"s\"}\n{\"question\": \"q\", \"response\": \"no think\"}\n");
  auto field = test::run_safekey({"annotate", "--data", dir + "/field.jsonl", "--out", dir + "/o.json"});
  EXPECT_EQ(field.exit_code, 1);
  EXPECT_TRUE(has(field.err, dir + "/field.jsonl:1:response: missing")) << field.err;
  EXPECT_TRUE(has(field.err, dir + "/field.jsonl:2:response: has no <think>")) << field.err;
  EXPECT_TRUE(has(field.err, dir + "/field.jsonl:2:source: missing")) << field.err;
  EXPECT_FALSE(path_exists(dir + "/o.json"));

  // --skip-invalid writes the good records and lists the rest.
  auto skip = test::run_safekey({"annotate", "--data", dir + "/field.jsonl", "--out", dir + "/o.json",
                                 "--skip-invalid", "--invalid-list", dir + "/skipped.json"});
  EXPECT_NE(skip.exit_code, 0);  // nothing valid at all is still an error
  EXPECT_TRUE(has(skip.err, "all 2 records are invalid")) << skip.err;

  auto method = test::run_safekey({"annotate", "--data", dir + "/field.jsonl", "--out", dir + "/o.json",
                                   "--method", "no-such-method"});
  EXPECT_EQ(method.exit_code, 1);
  EXPECT_TRUE(has(method.err, "unknown annotation method 'no-such-method' (available: rules")) << method.err;

  auto no_out = test::run_safekey({"annotate", "--data", dir + "/field.jsonl"});
  EXPECT_EQ(no_out.exit_code, 1);
  EXPECT_TRUE(has(no_out.err, "--out is required")) << no_out.err;
}

TEST(AnnotateCli, SkipInvalidKeepsTheGoodRecords) {
  const std::string dir = test::make_temp_dir("annotate_cli");
  write_file_atomic(dir + "/mixed.json",
                    "[{\"question\": \"q\", \"response\": \"<think>The user asks q. Hmm.</think>a\", \"source\": \"s\"},\n"
                    " {\"question\": \"q\"}]\n");
  auto r = test::run_safekey({"annotate", "--data", dir + "/mixed.json", "--out", dir + "/o.json",
                              "--skip-invalid", "--invalid-list", dir + "/skipped.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = read_json_file(dir + "/o.json");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["summary_end_idx"], 24);
  json skipped = read_json_file(dir + "/skipped.json");
  EXPECT_EQ(skipped["skipped"], 1);
  EXPECT_EQ(skipped["records"][0]["origin"], dir + "/mixed.json:2");
}
