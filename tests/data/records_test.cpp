// Loading and validating training records: layouts, labels, offsets, all-problems-at-once errors
// and --skip-invalid.
#include <gtest/gtest.h>

#include "safekey/data/records.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "support/support.h"

using namespace safekey;
using namespace safekey::data;

namespace {

std::string write_tmp(const std::string& name, const std::string& text) {
  const std::string p = test::make_temp_dir("records") + "/" + name;
  write_file_atomic(p, text);
  return p;
}

std::string error_of(const std::string& path, const LoadOptions& o = {}) {
  return test::error_of([&] { load_records(path, o); });
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// "<think>\nThe user asks X. Hmm, risky.\n</think>\n\nNo." : U = [0, 24), K = [24, 36).
const char* kGood =
    R"({"question": "X?", "response": "<think>The user asks X. Hmm, risky.</think>No.", "source": "wildjailbreak", "summary_end_idx": 24, "next_sentence_end_idx": 36})";

}  // namespace

TEST(Records, JsonArrayWithLinesAndSpans) {
  const std::string p = write_tmp("a.json", std::string("[\n  ") + kGood + ",\n\n  " +
      R"({"question": "Y", "response": "<think>\nB c. D.\n</think>\n\nE", "source": "4o_rewrite",)" +
      "\n   \"summary_end_idx\": 12, \"next_sentence_end_idx\": 15, \"id\": 7, \"category\": \"Misc\"}\n]\n");
  LoadResult r = load_records(p);
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.total, 2);
  const Record& a = r.records[0];
  EXPECT_EQ(a.response, "<think>\nThe user asks X. Hmm, risky.\n</think>\n\nNo.");
  EXPECT_EQ(a.unsafe, 1);
  EXPECT_EQ(a.understanding(), "<think>\nThe user asks X.");
  EXPECT_EQ(a.key_sentence(), " Hmm, risky.");
  EXPECT_EQ(a.origin, p + ":2");
  const Record& b = r.records[1];
  EXPECT_EQ(b.unsafe, 0);  // 4o_rewrite is benign
  EXPECT_EQ(b.id, "7");
  EXPECT_EQ(b.category, std::vector<std::string>{"Misc"});
  EXPECT_EQ(b.origin, p + ":4");
  EXPECT_EQ(b.key_sentence(), " D.");
}

TEST(Records, JsonlWithBenignSourcesAndExplicitLabel) {
  const std::string p = write_tmp("a.jsonl", std::string(kGood) + "\n\n" +
      R"({"question": "Q", "response": "<think>The user asks X. Hmm, risky.</think>No.", "source": "mine", "unsafe": false, "summary_end_idx": 24, "next_sentence_end_idx": 36})" + "\n");
  LoadOptions o;
  o.benign_sources = {"wildjailbreak"};
  LoadResult r = load_records(p, o);
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].unsafe, 0);
  EXPECT_EQ(r.records[1].unsafe, 0);  // explicit field wins over the source
  EXPECT_EQ(r.records[1].origin, p + ":3");
}

TEST(Records, ChatStyleWithCharOrByteOffsets) {
  // "<think>\n中文 asks. Hmm.\n</think>\n\nNo": U ends after "asks." (code point 16, byte 20).
  const std::string resp = "<think>\\n\u4e2d\u6587 asks. Hmm.\\n</think>\\n\\nNo";
  const std::string msgs = R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ")" + resp + "\"}]";
  const std::string p = write_tmp("c.jsonl",
      msgs + R"(, "unsafe": 1, "summary_end_idx": 16, "next_sentence_end_idx": 21})" + "\n" +
      msgs + R"(, "source": "x", "summary_end_byte": 20, "next_sentence_end_byte": 25})" + "\n");
  LoadResult r = load_records(p);
  ASSERT_EQ(r.records.size(), 2u);
  for (const auto& rec : r.records) {
    EXPECT_TRUE(rec.chat_style);
    EXPECT_EQ(rec.question, "q");
    EXPECT_EQ(rec.summary_end_idx, 16);
    EXPECT_EQ(rec.summary_end_byte, 20);
    EXPECT_EQ(rec.next_sentence_end_idx, 21);
    EXPECT_EQ(rec.understanding(), "<think>\n\u4e2d\u6587 asks.");
    EXPECT_EQ(rec.key_sentence(), " Hmm.");
  }
  // A byte offset inside a character is reported.
  const std::string bad = write_tmp("d.jsonl",
      msgs + R"(, "unsafe": 1, "summary_end_byte": 10, "next_sentence_end_byte": 25})" + "\n");
  const std::string e = error_of(bad);
  EXPECT_TRUE(has(e, bad + ":1:summary_end_byte: byte 10 is inside a UTF-8 character")) << e;
}

TEST(Records, EveryProblemReportedAtOnceWithFileLineField) {
  const std::string p = write_tmp("bad.jsonl",
      std::string(kGood) + "\n" +
      R"({"response": 5, "source": "s", "summary_end_idx": 1.5, "next_sentence_end_idx": -1})" + "\n" +
      R"({"question": "q", "response": "no think here", "summary_end_idx": 3, "next_sentence_end_idx": 4})" + "\n" +
      R"({"question": "q", "response": "<think>a. b.</think>", "source": "s", "summary_end_idx": 99, "next_sentence_end_idx": 9})" + "\n" +
      R"({"question": "q", "response": "<think>a. b.</think>", "source": "s", "summary_end_idx": 11, "next_sentence_end_idx": 10})" + "\n" +
      R"({"question": "q", "response": "<think>a. b.</think>", "source": "s", "summary_end_idx": 8, "next_sentence_end_idx": 10})" + "\n" +
      R"({"question": "", "response": "<think>a. b.</think>", "source": 3, "category": [1], "id": 1.5})" + "\n" +
      "{\"question\": \"q\",\n" +
      "[1, 2]\n" +
      R"({"messages": [{"role": "assistant", "content": "x"}], "unsafe": 2, "summary_end_idx": 9, "next_sentence_end_idx": 10})" + "\n");
  const std::string e = error_of(p);
  for (const char* want : {
           ":2:question: missing", ":2:response: expected a string, got number",
           ":2:summary_end_idx: expected a non-negative integer, got number 1.5",
           ":2:next_sentence_end_idx: expected a non-negative integer, got number -1",
           ":3:response: has no <think>...</think> block", ":3:source: missing",
           ":4:summary_end_idx: 99 is beyond the end of the normalised response (24 characters)",
           ":5:next_sentence_end_idx: 10 is before summary_end_idx 11",
           ":6:summary_end_idx: U is empty", ":7:question: is empty",
           ":7:source: expected a string, got number", ":7:category: expected a string or a list of strings",
           ":7:id: expected a string or an integer", ":7:summary_end_idx: missing", ":8:18: invalid JSON",
           ":9: expected a JSON object, got array", ":10:messages: expected exactly [user, assistant] turns",
           ":10:unsafe: expected true/false or 0/1", ": 9 of 10 records are invalid"}) {
    EXPECT_TRUE(has(e, p + want)) << "missing '" << want << "' in:\n" << e;
  }
  EXPECT_FALSE(has(e, p + ":1:")) << e;
}

TEST(Records, JsonArrayProblemsNameTheRecordLine) {
  const std::string p = write_tmp("bad.json", std::string("[") + kGood + ",\n" + kGood + ",\n\n" +
      R"({"question": "q", "source": "s"}])");
  const std::string e = error_of(p);
  EXPECT_TRUE(has(e, p + ":4:response: missing (record 2)")) << e;
  EXPECT_TRUE(has(e, p + ":4:summary_end_idx: missing")) << e;
  // A syntax error in an array file is one error with line:column.
  const std::string q = write_tmp("syntax.json", "[\n  {\"question\": \"q\",,}\n]");
  EXPECT_TRUE(has(error_of(q), q + ":2:20: invalid JSON")) << error_of(q);  // the second comma
}

TEST(Records, SkipInvalidCountsAndWritesTheList) {
  const std::string p = write_tmp("mixed.jsonl", std::string(kGood) + "\n" +
      R"({"question": "q", "response": "<think>a. b.</think>", "source": "s"})" + "\nnot json\n" + kGood + "\n");
  LoadOptions o;
  o.skip_invalid = true;
  o.invalid_list_path = test::make_temp_dir("records") + "/skipped.json";
  LoadResult r = load_records(p, o);
  EXPECT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.skipped, 2);
  EXPECT_EQ(r.total, 4);
  EXPECT_EQ(r.records[1].origin, p + ":4");
  json list = read_json_file(o.invalid_list_path);
  EXPECT_EQ(list["skipped"], 2);
  ASSERT_EQ(list["records"].size(), 2u);
  EXPECT_EQ(list["records"][0]["origin"], p + ":2");
  EXPECT_EQ(list["records"][0]["problems"][0]["field"], "summary_end_idx");
  EXPECT_EQ(list["records"][1]["origin"], p + ":3");
  EXPECT_EQ(list["records"][1]["problems"][0]["column"], 2);  // "not": fails at the "o"
  // Nothing valid at all is still an error.
  const std::string none = write_tmp("none.jsonl", "{}\n");
  EXPECT_TRUE(has(error_of(none, o), "all 1 records are invalid")) << error_of(none, o);
}

TEST(Records, FileLevelErrors) {
  EXPECT_TRUE(has(error_of("/nonexistent/r.json"), "/nonexistent/r.json"));
  const std::string empty = write_tmp("empty.json", "  \n");
  EXPECT_TRUE(has(error_of(empty), "the file is empty")) << error_of(empty);
  // Records without spans load when spans are not required (annotation input).
  const std::string p = write_tmp("nospans.json", R"([{"question": "q", "response": "<think>a.</think>", "source": "s"}])");
  LoadOptions o;
  o.require_spans = false;
  LoadResult r = load_records(p, o);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_FALSE(r.records[0].has_spans);
}

TEST(Records, Star1LoadsWithoutSpans) {
  const std::string path = test::shared_dir() + "/data/star1/STAR-1.json";
  if (!path_exists(path)) GTEST_SKIP() << "missing " << path;
  LoadOptions o;
  o.require_spans = false;
  LoadResult r = load_records(path, o);
  EXPECT_EQ(r.records.size(), 1000u);
  for (const auto& rec : r.records) {
    EXPECT_EQ(rec.unsafe, 1);
    EXPECT_EQ(rec.response.rfind("<think>\n", 0), 0u);
  }
  // Strict loading says the offsets are missing, for every record.
  const std::string e = error_of(path);
  EXPECT_TRUE(has(e, "1000 of 1000 records are invalid")) << e.substr(0, 300);
}

TEST(Records, MutatedInputNeverCrashes) {
  // Every truncation and many byte flips of valid files either load or fail with safekey::Error.
  const std::string line = std::string(kGood) + "\n" +
      R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>\u4e2d a. b.</think>x"}], "unsafe": 1, "summary_end_byte": 13, "next_sentence_end_byte": 16, "big": 18446744073709551615})" + "\n";
  const std::string dir = test::make_temp_dir("records");
  uint64_t state = 12345;
  auto next = [&] { return state = state * 6364136223846793005ULL + 1442695040888963407ULL; };
  int loaded = 0, errors = 0;
  for (int i = 0; i < 120; ++i) {
    std::string text = line;
    if (i < 60) {
      text = text.substr(0, static_cast<size_t>(i) * text.size() / 60);
    } else {
      for (int f = 0; f < 3; ++f) text[(next() >> 33) % text.size()] = static_cast<char>(next() >> 56);
    }
    for (const char* name : {"m.jsonl", "m.json"}) {
      const std::string p = dir + "/" + name;
      write_file_atomic(p, (std::string(name) == "m.json" ? "[" + text + "]" : text));
      try {
        LoadResult r = load_records(p);
        for (const auto& rec : r.records) {
          EXPECT_TRUE(rec.has_spans);
          EXPECT_FALSE(rec.key_sentence().empty());
        }
        ++loaded;
      } catch (const Error&) {
        ++errors;
      }
    }
  }
  EXPECT_GT(loaded, 0);
  EXPECT_GT(errors, 0);
  // A huge offset is reported, not wrapped around.
  const std::string p = write_tmp("big.jsonl", R"({"question": "q", "response": "<think>a. b.</think>", "source": "s", "summary_end_idx": 18446744073709551615, "next_sentence_end_idx": 12})");
  EXPECT_TRUE(has(error_of(p), ":1:summary_end_idx: 18446744073709551615 is out of range")) << error_of(p);
}
