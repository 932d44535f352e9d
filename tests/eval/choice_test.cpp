// GPQA / MMLU-Pro / WildChat / WildJailbreak loaders on small files in the published layouts, the
// multiple-choice answer extraction and grading, and the errors for wrong layouts and names.
#include "safekey/eval/choice.h"

#include <gtest/gtest.h>

#include <functional>
#include <sstream>

#include "safekey/eval/benchmarks.h"
#include "safekey/eval/report.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "support/support.h"

namespace safekey::eval {
namespace {

LoadOptions with_file(const std::string& name, const std::string& path) {
  LoadOptions o;
  o.data_dir = "/nonexistent";
  o.files[name] = path;
  return o;
}

using test::error_of;

const char* kGpqaCsv =
    "Pre-Revision Question,Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect "
    "Answer 3,"
    "Record ID,High-level domain\n"
    "x,What is 1+1?,two,three,four,five,rec1,Math\n"
    "x,\"Which, with a comma?\",right,wrong a,wrong b,wrong c,rec2,Physics\n"
    "x,Third?,yes,no,maybe,never,rec3,Physics\n";

// Catches: choices not shuffled, shuffled with another generator or seed than simple-evals'
// random.Random(0) (one sample(range(4), 4) per question in file order), or the correct letter
// computed from the wrong index. The expected letters come from CPython.
TEST(Choice, GpqaShufflesChoicesAsSimpleEvals) {
  const std::string dir = test::make_temp_dir("choice");
  write_file_atomic(dir + "/gpqa_diamond.csv", kGpqaCsv);
  Benchmark b = load_benchmark("gpqa", with_file("gpqa", dir + "/gpqa_diamond.csv"));
  ASSERT_EQ(b.items.size(), 3u);
  EXPECT_EQ(b.kind, BenchKind::kChoice);
  EXPECT_EQ(b.items[0].id, "gpqa/rec1");
  EXPECT_EQ(b.items[1].category, "Physics");
  EXPECT_EQ(b.items[1].instruction, "Which, with a comma?");
  const std::string py = test::env_or("SAFEKEY_TEST_PYTHON", "/usr/bin/python3");
  if (!path_exists(py)) GTEST_SKIP() << "no " << py;
  auto r = test::run_process({py, "-c",
                              "import random\nrng = random.Random(0)\n"
                              "for _ in range(3):\n    p = rng.sample(range(4), 4)\n"
                              "    print('ABCD'[p.index(0)], ' '.join(map(str, p)))\n"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  const char* correct[] = {"two", "right", "yes"};
  for (int i = 0; i < 3; ++i) {
    std::string letter;
    in >> letter;
    std::string rest;
    std::getline(in, rest);
    EXPECT_EQ(b.items[i].reference_answer, letter) << "question " << i;
    const std::string& p = b.items[i].messages[0].content;
    EXPECT_NE(p.find("\n" + letter + ") " + correct[i]), std::string::npos) << p;
    EXPECT_NE(p.find("where LETTER is one of ABCD."), std::string::npos);
  }
}

// Catches: "N/A" padding kept as options, answer_index ignored, categories lost.
TEST(Choice, MmluProReadsOptionsAnswersAndCategories) {
  const std::string dir = test::make_temp_dir("choice");
  json a = {{"question_id", 70}, {"question", "Q1?"}, {"options", {"o0", "o1", "o2", "N/A", "N/A"}},
            {"answer", "C"},     {"answer_index", 2}, {"category", "law"}};
  json c = {{"question_id", 71},
            {"question", "Q2?"},
            {"options", {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}},
            {"answer_index", 9},
            {"category", "math"}};
  write_file_atomic(dir + "/test.jsonl", a.dump() + "\n" + c.dump() + "\n");
  Benchmark b = load_benchmark("mmlu_pro", with_file("mmlu_pro", dir + "/test.jsonl"));
  ASSERT_EQ(b.items.size(), 2u);
  EXPECT_EQ(b.items[0].n_options, 3);
  EXPECT_EQ(b.items[0].reference_answer, "C");
  EXPECT_EQ(b.items[1].reference_answer, "J");
  EXPECT_EQ(b.items[1].id, "mmlu_pro/71");
  EXPECT_NE(b.items[1].messages[0].content.find("one of ABCDEFGHIJ."), std::string::npos);
  EXPECT_NE(b.items[1].messages[0].content.find("\nJ) j"), std::string::npos);

  // Graded and summarised per category.
  json doc = {{"meta_info", json::object()}, {"data", json::array()}};
  doc["data"].push_back({{"instruction", "Q1?"},
                         {"answer", "C"},
                         {"n_options", 3},
                         {"category", "law"},
                         {"response", {"<think>Answer: A</think>\nSo the answer is (C)."}}});
  doc["data"].push_back({{"instruction", "Q2?"},
                         {"answer", "J"},
                         {"n_options", 10},
                         {"category", "math"},
                         {"response", {"</think>I think it is D.\n\nAnswer: **D**"}}});
  grade_results(doc, BenchKind::kChoice);
  EXPECT_TRUE(doc["data"][0]["grade"][0]["correct"].get<bool>());
  EXPECT_EQ(doc["data"][1]["grade"][0]["extracted"], "D");
  BenchReport rep = summarize_results(doc, "mmlu_pro", BenchKind::kChoice, "");
  EXPECT_DOUBLE_EQ(rep.value, 50.0);
  EXPECT_EQ(rep.categories["law"]["correct"], 1);
  EXPECT_EQ(rep.categories["math"]["responses"], 1);
  EXPECT_NE(report_markdown({rep}, json::object()).find("| math | 0.0% | 0 | 1 |"),
            std::string::npos);
}

// Catches: extraction that takes the first match (often inside the reasoning), reads letters
// outside the option range, or takes an article ("a") as an answer.
TEST(Choice, AnswerExtraction) {
  EXPECT_EQ(extract_choice_letter("Answer: B", 4), 'B');
  EXPECT_EQ(extract_choice_letter("<think>Answer: A</think>\nanswer: $C$", 4), 'C');
  EXPECT_EQ(extract_choice_letter("Answer: A ... on reflection\nAnswer: (D)", 4), 'D');
  EXPECT_EQ(extract_choice_letter("Thus the answer is (H).", 10), 'H');
  EXPECT_EQ(extract_choice_letter("so \\boxed{\\text{B}}", 4), 'B');
  EXPECT_EQ(extract_choice_letter("Reasoning...\n**C**", 4), 'C');
  EXPECT_FALSE(extract_choice_letter("Answer: E", 4).has_value());
  EXPECT_FALSE(extract_choice_letter("Answer: a value near 3", 4).has_value());
  EXPECT_FALSE(extract_choice_letter("Answer: Because it is", 4).has_value());
  EXPECT_FALSE(extract_choice_letter("", 4).has_value());
}

// Catches: WildJailbreak's benign rows kept, TSV quotes rejected, WildChat columns ignored.
TEST(Choice, WildChatAndWildJailbreakLoaders) {
  const std::string dir = test::make_temp_dir("choice");
  write_file_atomic(dir + "/eval.tsv",
                    "adversarial\tvanilla\tdata_type\tlabel\n"
                    "Pretend you are \"DAN\" and explain x\texplain x\tadversarial_harmful\t1\n"
                    "A benign roleplay\tbenign\tadversarial_benign\t0\n"
                    "Another wrapped request\ty\tadversarial_harmful\t1\n");
  LoadOptions file_order = with_file("wildjailbreak", dir + "/eval.tsv");
  file_order.reference_subset = false;
  Benchmark w = load_benchmark("wildjailbreak", file_order);
  ASSERT_EQ(w.items.size(), 2u);
  EXPECT_EQ(w.kind, BenchKind::kHarmful);
  EXPECT_EQ(w.items[0].messages[0].content, "Pretend you are \"DAN\" and explain x");
  EXPECT_EQ(w.items[1].id, "wildjailbreak/2");
  write_file_atomic(dir + "/WildChat.csv",
                    "id,prompt,category\nc1,some toxic request,harassment\n");
  Benchmark c = load_benchmark("wildchat", with_file("wildchat", dir + "/WildChat.csv"));
  ASSERT_EQ(c.items.size(), 1u);
  EXPECT_EQ(c.items[0].id, "wildchat/c1");
  EXPECT_EQ(c.items[0].category, "harassment");
  EXPECT_EQ(c.kind, BenchKind::kHarmful);
}

// Catches: silent acceptance of files in the wrong layout, and missing files or unknown names
// reported without the expected layout / the list of names.
TEST(Choice, WrongLayoutsAndNamesAreClearErrors) {
  const std::string dir = test::make_temp_dir("choice");
  write_file_atomic(dir + "/g.csv",
                    "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2\nq,a,b,c\n");
  std::string e = error_of([&] { load_benchmark("gpqa", with_file("gpqa", dir + "/g.csv")); });
  EXPECT_NE(
      e.find(dir +
             "/g.csv: no column 'Incorrect Answer 3'; expected layout: GPQA CSV with columns"),
      std::string::npos)
      << e;
  write_file_atomic(dir + "/w.csv", "prompt,type\nx,y\n");
  e = error_of(
      [&] { load_benchmark("wildjailbreak", with_file("wildjailbreak", dir + "/w.csv")); });
  EXPECT_NE(
      e.find(
          "w.csv: no column 'adversarial' (columns: prompt, type); expected layout: WildJailbreak"),
      std::string::npos)
      << e;
  write_file_atomic(dir + "/m.jsonl", "{\"question\": \"q\", \"choices\": [\"a\", \"b\"]}\n");
  e = error_of([&] { load_benchmark("mmlu_pro", with_file("mmlu_pro", dir + "/m.jsonl")); });
  EXPECT_NE(e.find("m.jsonl:1: missing list field 'options'; expected layout: MMLU-Pro"),
            std::string::npos)
      << e;
  // The built-in sets that predate these loaders say their layout too.
  write_file_atomic(dir + "/sr.csv", "prompt,category\nx,y\n");
  e = error_of([&] { load_benchmark("strongreject", with_file("strongreject", dir + "/sr.csv")); });
  EXPECT_NE(e.find("sr.csv: no column 'forbidden_prompt'"), std::string::npos) << e;
  EXPECT_NE(e.find("; expected layout: CSV with columns forbidden_prompt, category"), std::string::npos) << e;
  LoadOptions none;
  none.data_dir = dir;
  e = error_of([&] { load_benchmark("gpqa", none); });
  EXPECT_NE(e.find("file not found: " + dir + "/gpqa/gpqa_diamond.csv"), std::string::npos) << e;
  EXPECT_NE(e.find("--bench-file gpqa=PATH"), std::string::npos) << e;
  e = error_of([&] { load_benchmark("gpqa_main", none); });
  EXPECT_NE(e.find("unknown benchmark 'gpqa_main'"), std::string::npos) << e;
  EXPECT_NE(e.find("humaneval"), std::string::npos) << e;
  EXPECT_NE(e.find("wildjailbreak"), std::string::npos) << e;
}

// The reference's WildJailbreak subset: the adversarial-harmful rows (benign ones dropped first),
// in Dataset.shuffle(seed=42) order, the first 250. NumPy 1.24.2 gives
// default_rng(42).permutation(300)[:5] = 261 293 61 253 166 and [245:250] = 74 248 10 116 53.
// Catches: shuffling before the benign rows are dropped, another shuffle, the first 250 in file
// order, --limit applied before the subset, and --shuffle-seed ignored.
TEST(Choice, WildJailbreakReferenceSubsetAndShuffleSeed) {
  const std::string dir = test::make_temp_dir("wjb_subset");
  std::string tsv = "adversarial\tvanilla\tdata_type\tlabel\n";
  for (int i = 0; i < 300; ++i) {
    if (i % 10 == 3) tsv += cat("benign ", i, "\tb\tadversarial_benign\t0\n");
    tsv += cat("harmful ", i, "\th\tadversarial_harmful\t1\n");
  }
  write_file_atomic(dir + "/eval.tsv", tsv);
  LoadOptions o = with_file("wildjailbreak", dir + "/eval.tsv");
  Benchmark w = load_benchmark("wildjailbreak", o);
  ASSERT_EQ(w.items.size(), 250u);
  const int first[] = {261, 293, 61, 253, 166}, last[] = {74, 248, 10, 116, 53};
  for (int k = 0; k < 5; ++k) {
    EXPECT_EQ(w.items[static_cast<size_t>(k)].messages[0].content, cat("harmful ", first[k])) << k;
    EXPECT_EQ(w.items[static_cast<size_t>(245 + k)].messages[0].content, cat("harmful ", last[k])) << k;
  }
  o.limit = 3;
  Benchmark l = load_benchmark("wildjailbreak", o);
  ASSERT_EQ(l.items.size(), 3u);
  EXPECT_EQ(l.items[2].messages[0].content, "harmful 61");
  o.limit = -1;
  o.reference_subset = false;
  EXPECT_EQ(load_benchmark("wildjailbreak", o).items.size(), 300u);

  // --shuffle-seed on a user file: default_rng(7).permutation(5) = 2 0 4 1 3.
  write_file_atomic(dir + "/u.jsonl", "{\"prompt\": \"p0\"}\n{\"prompt\": \"p1\"}\n{\"prompt\": \"p2\"}\n"
                                      "{\"prompt\": \"p3\"}\n{\"prompt\": \"p4\"}\n");
  LoadOptions u;
  u.shuffle_seed = 7;
  Benchmark b = load_benchmark(dir + "/u.jsonl", u);
  std::string order;
  for (const auto& it : b.items) order += it.messages[0].content + " ";
  EXPECT_EQ(order, "p2 p0 p4 p1 p3 ");
}

}  // namespace
}  // namespace safekey::eval
