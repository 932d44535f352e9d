// `safekey generate` as a process: the reference results layout plus JSONL, resuming after an
// interruption (a torn last line included), settings checks on resume, and malformed prompt files
// reported as file:line:column.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "infer/tiny_model.h"
#include "safekey/infer/prompt_file.h"
#include "safekey/text/tokenizer.h"

namespace safekey {
namespace {

using test::run_safekey;

class GenerateCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::tiny_model_refs_present()) return;
    dir_ = new std::string(test::make_tiny_model("gencli_tiny", 512));
  }
  void SetUp() override { SAFEKEY_REQUIRE_TINY_MODEL_REFS(); }
  static std::string* dir_;
};
std::string* GenerateCli::dir_ = nullptr;

std::vector<std::string> gen_args(const std::string& model, const std::string& prompts, const std::string& out) {
  return {"generate", "--model", model, "--prompts", prompts, "--out", out, "--max-new-tokens", "12",
          "--batch-size", "3", "--threads", "1"};
}

TEST_F(GenerateCli, WritesTheReferenceLayoutAndResumes) {
  std::string work = test::make_temp_dir("gencli");
  std::string prompts = path_join(work, "prompts.jsonl");
  write_file_atomic(prompts,
                    "\"What is tea?\"\n"
                    "{\"prompt\": \"Name a color.\", \"id\": \"c1\", \"category\": \"easy\"}\n"
                    "\n"
                    "{\"instruction\": \"Explain rain.\"}\n"
                    "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", "
                    "\"content\": \"Hello!\"}, {\"role\": \"user\", \"content\": \"Bye?\"}], \"objective\": \"say bye\"}\n"
                    "{\"prompt\": \"Teach me X\", \"target\": \"Sure, here is how to do X in three easy steps\"}\n");
  std::string out = path_join(work, "res.json");
  auto r = run_safekey(gen_args(*dir_, prompts, out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << "no progress line: " << r.err;
  json doc = read_json_file(out);
  ASSERT_TRUE(doc.contains("meta_info"));
  EXPECT_EQ(doc["meta_info"]["max-new-tokens"], "12");
  const json& data = doc["data"];
  ASSERT_EQ(data.size(), 5u);
  for (const auto& it : data) {
    EXPECT_TRUE(it["instruction"].is_string());
    EXPECT_TRUE(it["prompt"].is_string());
    ASSERT_TRUE(it["response"].is_array());
    ASSERT_EQ(it["response"].size(), 1u);
  }
  EXPECT_EQ(data[0]["instruction"], "What is tea?");
  EXPECT_EQ(data[1]["id"], "c1");
  EXPECT_EQ(data[1]["category"], "easy");
  EXPECT_EQ(data[3]["instruction"], "say bye");
  EXPECT_EQ(data[3]["messages"].size(), 3u);
  std::string p4 = data[4]["prompt"];
  // The target is shorter than 20 tokens, so all of it is appended after the generation prompt.
  std::string tail = "<｜Assistant｜><think>\n Sure, here is how to do X in three easy steps";
  ASSERT_GE(p4.size(), tail.size());
  EXPECT_EQ(p4.substr(p4.size() - tail.size()), tail);
  // The JSONL beside it holds the same items.
  std::string lines = read_file(path_join(work, "res.jsonl"));
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 5);

  // Interrupted run: two finished items and a torn third line; the rerun generates only the rest
  // and ends with the same results.
  size_t second = lines.find('\n', lines.find('\n') + 1);
  write_file_atomic(path_join(work, "res.jsonl"), lines.substr(0, second + 1) + "{\"index\": 2, \"instr");
  std::remove(out.c_str());
  auto r2 = run_safekey(gen_args(*dir_, prompts, out));
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_NE(r2.err.find("2 already done, 3 to generate"), std::string::npos) << r2.err;
  json doc2 = read_json_file(out);
  EXPECT_EQ(doc2["data"], doc["data"]);
  // Nothing left: nothing generated.
  auto r3 = run_safekey(gen_args(*dir_, prompts, out));
  ASSERT_EQ(r3.exit_code, 0) << r3.err;
  EXPECT_NE(r3.err.find("5 already done, 0 to generate"), std::string::npos) << r3.err;
  // Other settings: refuse to mix, unless --overwrite.
  auto args = gen_args(*dir_, prompts, out);
  args.insert(args.end(), {"--temperature", "0.7"});
  auto r4 = run_safekey(args);
  EXPECT_EQ(r4.exit_code, 1);
  EXPECT_NE(r4.err.find("--temperature"), std::string::npos) << r4.err;
  args.push_back("--overwrite");
  auto r5 = run_safekey(args);
  EXPECT_EQ(r5.exit_code, 0) << r5.err;
  EXPECT_NE(r5.err.find("0 already done, 5 to generate"), std::string::npos) << r5.err;
}

TEST_F(GenerateCli, PromptTooLongForTheContext) {
  std::string work = test::make_temp_dir("gencli_long");
  std::string prompts = path_join(work, "p.json");
  std::string big;
  for (int i = 0; i < 400; ++i) big += "w" + std::to_string(i) + " ";
  write_file_atomic(prompts, json::array({"short", big}).dump());
  auto args = gen_args(*dir_, prompts, path_join(work, "o.json"));
  auto r = run_safekey(args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: request 1: the prompt has"), std::string::npos) << r.err;
  // The failed run recorded its settings; a run with other settings starts over explicitly.
  args.insert(args.end(), {"--truncate-prompt", "--overwrite"});
  auto r2 = run_safekey(args);
  EXPECT_EQ(r2.exit_code, 0) << r2.err;
  json doc = read_json_file(path_join(work, "o.json"));
  EXPECT_EQ(doc["data"][1]["prompt_tokens"], 512 - 12);
}

// generate, serve and eval load the model the same way (apps/safekey/model_setup.h): --dtype is
// checked, and eval honours it too.
TEST_F(GenerateCli, DtypeIsCheckedAndEvalGeneratesInBfloat16) {
  std::string work = test::make_temp_dir("gencli_dtype");
  std::string prompts = path_join(work, "p.csv");
  write_file_atomic(prompts, "prompt\nhello there\nhow are you\n");
  const std::string prompts_json = path_join(work, "p.json");
  write_file_atomic(prompts_json, json::array({"hello there", "how are you"}).dump());
  auto args = gen_args(*dir_, prompts_json, path_join(work, "o.json"));
  args.insert(args.end(), {"--dtype", "float16"});
  auto r = run_safekey(args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--dtype must be float32 or bfloat16 (got 'float16')"), std::string::npos) << r.err;
  auto e = run_safekey({"eval", "--model", *dir_, "--benches", prompts, "--out", path_join(work, "ev"),
                        "--max-new-tokens", "6", "--threads", "1", "--dtype", "bfloat16"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  json doc = read_json_file(path_join(work, "ev/p.json"));
  ASSERT_EQ(doc["data"].size(), 2u);
  EXPECT_GT(doc["data"][0]["completion_tokens"].get<int>(), 0) << doc.dump(1);
  EXPECT_TRUE(path_exists(path_join(work, "ev/report.md")));
}

TEST(PromptFile, MalformedFilesNameLineAndColumn) {
  std::string work = test::make_temp_dir("promptfile");
  auto expect_err = [&](const std::string& name, const std::string& text, const std::string& want) {
    std::string p = path_join(work, name);
    write_file_atomic(p, text);
    try {
      infer::read_prompt_file(p);
      FAIL() << "no error for " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p + want), std::string::npos) << e.what();
    }
  };
  expect_err("a.jsonl", "\"ok\"\n{\"prompt\": tru}\n", ":2:");
  expect_err("b.json", "[\"ok\",\n  {\"prompt\": 5}]", ":[1]: field 'prompt' must be a string");
  expect_err("c.jsonl", "\"ok\"\n{\"messages\": [{\"role\": \"user\"}]}\n", ":2: messages[0]: missing field 'content'");
  expect_err("d.jsonl", "{\"id\": \"x\"}\n", ":1: needs a non-empty 'prompt'");
  expect_err("e.json", "[\"a\", \"b\"", ":1:");
  expect_err("f.jsonl", "\n\n", ": the prompt file is empty");
}

// --save-token-ids: each item carries the generated ids, as many as completion_tokens, and they
// decode to the response. Catches: ids of another row, the prompt's ids, or a missing field.
TEST_F(GenerateCli, SaveTokenIdsWritesTheGeneratedIds) {
  std::string work = test::make_temp_dir("gencli_ids");
  std::string prompts = path_join(work, "prompts.jsonl");
  write_file_atomic(prompts, "\"What is tea?\"\n\"Name a color.\"\n\"Explain rain in two sentences.\"\n");
  std::string out = path_join(work, "res.json");
  auto args = gen_args(*dir_, prompts, out);
  for (const char* a : {"--save-token-ids", "--repetition-penalty", "1.2"}) args.push_back(a);
  auto r = run_safekey(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto tok = text::Tokenizer::from_file(*dir_);
  const json data = read_json_file(out)["data"];
  ASSERT_EQ(data.size(), 3u);
  for (const auto& it : data) {
    ASSERT_TRUE(it.contains("token_ids")) << it.dump();
    const auto ids = it["token_ids"].get<std::vector<int64_t>>();
    EXPECT_EQ(static_cast<int64_t>(ids.size()), it["completion_tokens"].get<int64_t>());
    std::string text = tok.decode(ids, true);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.erase(text.begin());
    EXPECT_EQ(text, it["response"][0].get<std::string>());
  }
}

// --device reaches every command that loads a model: an unknown device is an error naming the flag,
// and CUDA on a machine without it is refused (generate, eval, serve and analyze once loaded the
// model on the CPU whatever --device said).
TEST_F(GenerateCli, DeviceFlagIsHonouredByEveryModelCommand) {
  std::string work = test::make_temp_dir("gencli_device");
  const std::string prompts = path_join(work, "p.json");
  write_file_atomic(prompts, json::array({"hello there"}).dump());
  const std::string bench = path_join(work, "b.csv");
  write_file_atomic(bench, "prompt\nhello there\n");
  const std::string records = path_join(work, "r.jsonl");
  write_file_atomic(records, "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", "
                             "\"content\": \"<think>\\nA b. C d.\\n</think>\\n\\nx\"}], \"unsafe\": 1, "
                             "\"summary_end_byte\": 12, \"next_sentence_end_byte\": 17}\n");
  const std::vector<std::vector<std::string>> commands = {
      gen_args(*dir_, prompts, path_join(work, "o.json")),
      {"eval", "--model", *dir_, "--benches", bench, "--out", path_join(work, "ev")},
      {"serve", "--model", *dir_, "--port", "0"},
      {"analyze", "probe", "--model", *dir_, "--data", records},
      {"analyze", "attention", "--model", *dir_, "--data", records},
      {"forward", "--model", *dir_, "--ids", "1,2,3", "--out", path_join(work, "f.safetensors")}};
  for (auto args : commands) {
    args.insert(args.end(), {"--device", "tpu7"});
    const auto r = run_safekey(args);
    EXPECT_EQ(r.exit_code, 1) << args[0];
    EXPECT_NE(r.err.find("--device: invalid device 'tpu7'"), std::string::npos) << args[0] << ": " << r.err;
    if (torch::cuda::is_available()) continue;
    args.back() = "cuda";
    const auto c = run_safekey(args);
    EXPECT_EQ(c.exit_code, 1) << args[0];
    EXPECT_NE(c.err.find("--device cuda: CUDA is not available"), std::string::npos) << args[0] << ": " << c.err;
  }
}

}  // namespace
}  // namespace safekey
