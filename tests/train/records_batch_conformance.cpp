// Records -> batch conformance: STAR-1 records rendered with the real R1-Distill-Qwen and
// R1-Distill-Llama chat templates and tokenized with their real tokenizers, through the trainer's
// data path (train::load_record_examples -> validate_example -> truncate_example -> collate), equal
// position by position the batch that tests/train/records_batch_ref.py computes independently:
// Jinja2 (transformers' environment) for the templates, the HF Rust tokenizers (npm) for ids and
// offsets, Python for the response normalisation and the span rule of SPEC.md section 3 (token
// spans from character offsets of the question, U and K). Compared: input_ids, labels, k_mask,
// attn_mask (and each row's query mask), c_span, the K span, row lengths, the safety label. Then
// `safekey train` on such text records with a tiny random model over the real vocabulary.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "safekey/train/batch.h"
#include "safekey/train/dataset.h"
#include "safekey/train/metrics.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"
#include "support/support.h"
#include "train/tiny.h"

namespace safekey {
namespace {

const char* kPython = "/usr/bin/python3";

struct Reference {
  std::string dir;
  json cases;
  std::string error;  // the reference script failed
};

// Runs the Python reference (about 15 s: two tokenizers over ~100 records) once per build tree:
// its output is cached under build/records-batch-ref/, keyed by everything it depends on.
const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    const std::string src = SAFEKEY_SOURCE_DIR, tokref = test::tokref_dir(),
                      shared = test::shared_dir();
    const std::string script = src + "/tests/train/records_batch_ref.py";
    std::string inputs;
    for (const std::string& f :
         {script, src + "/tests/text/tokenizer_ref.js", shared + "/data/star1/STAR-1.json",
          shared + "/tools/tokref/render_chat.py", tokref + "/r1_distill_qwen_tokenizer.json",
          tokref + "/llama3_1/package/models/tokenizer.json",
          tokref + "/node_modules/tokenizers/package.json",
          shared +
              "/data/hf-configs/reconstructed/DeepSeek-R1-Distill-Qwen-7B/tokenizer_config.json",
          shared +
              "/data/hf-configs/reconstructed/DeepSeek-R1-Distill-Llama-8B/tokenizer_config.json"})
      inputs += f + "\x1f" + read_file(f) + "\x1f";
    r.dir = cat(SAFEKEY_BINARY_DIR, "/records-batch-ref/", std::hash<std::string>()(inputs));
    if (!path_exists(r.dir + "/cases.json")) {
      const std::string tmp = test::make_temp_dir("records_batch");
      auto res = test::run_process({kPython, script, shared, tokref, src, tmp});
      if (res.exit_code != 0) {
        r.error = res.out + res.err;
        return r;
      }
      make_dirs(cat(SAFEKEY_BINARY_DIR, "/records-batch-ref"));
      std::error_code ec;  // a concurrent run may have put it there first: then use that one
      std::filesystem::rename(tmp, r.dir, ec);
    }
    r.cases = read_json_file(r.dir + "/cases.json");
    return r;
  }();
  return ref;
}

class RecordsBatch : public ::testing::Test {
 protected:
  void SetUp() override {
    SAFEKEY_REQUIRE_DIR(test::shared_dir() + "/data/star1");
    SAFEKEY_REQUIRE_DIR(test::shared_dir() + "/data/hf-configs/reconstructed");
    if (!path_exists(test::tokref_dir() + "/r1_distill_qwen_tokenizer.json") ||
        !path_exists(test::tokref_dir() + "/node_modules/tokenizers"))
      GTEST_SKIP() << "tokenizer references missing under " << test::tokref_dir()
                   << " (run scripts/install_test_refs.sh)";
    if (test::run_process({kPython, "-c", "import jinja2"}).exit_code != 0)
      GTEST_SKIP() << "Debian python3-jinja2 missing (run scripts/install_test_refs.sh)";
    const auto& ref = reference();
    ASSERT_TRUE(ref.error.empty()) << "tests/train/records_batch_ref.py failed:\n" << ref.error;
  }

  static const json& group(const std::string& tmpl, const std::string& name) {
    for (const auto& g : reference().cases["groups"])
      if (g["template"] == tmpl && g["name"] == name) return g;
    throw Error("no reference group " + tmpl + "/" + name);
  }

  // The trainer's path from a records file to its batches.
  static std::vector<train::Batch> batches_of(const json& g) {
    const json& t = reference().cases["templates"][g["template"].get<std::string>()];
    const int64_t max_len = g["max_seq_len"], bs = g["batch_size"];
    const bool compat = g["reference_compat"];
    train::Dataset ds =
        train::load_record_examples(reference().dir + "/" + g["records"].get<std::string>(),
                                    reference().dir + "/" + t["model_dir"].get<std::string>(),
                                    {"4o_rewrite"}, false, "", max_len, compat);
    for (auto& ex : ds.examples) {
      train::validate_example(ex, 0);
      train::truncate_example(ex, max_len, compat);
    }
    std::vector<train::Batch> out;
    for (size_t b = 0; b < ds.examples.size(); b += size_t(bs)) {
      std::vector<const data::TokenizedExample*> rows;
      for (size_t i = b; i < std::min(ds.examples.size(), b + size_t(bs)); ++i)
        rows.push_back(&ds.examples[i]);
      out.push_back(train::collate(rows, t["pad_id"].get<int64_t>()));
    }
    return out;
  }

  // Mismatches of a [B, T] tensor against the reference matrix; prints the first one.
  static int64_t compare(const torch::Tensor& got, const json& want, const std::string& what) {
    auto g = got.accessor<int64_t, 2>();
    if (got.size(0) != int64_t(want.size()) || got.size(1) != int64_t(want[0].size())) {
      ADD_FAILURE() << what << ": shape [" << got.size(0) << ", " << got.size(1) << "], reference ["
                    << want.size() << ", " << want[0].size() << "]";
      return 1;
    }
    int64_t bad = 0;
    for (int64_t i = 0; i < got.size(0); ++i)
      for (int64_t t = 0; t < got.size(1); ++t)
        if (g[i][t] != want[size_t(i)][size_t(t)].get<int64_t>() && bad++ == 0)
          ADD_FAILURE() << what << ": row " << i << " position " << t << ": " << g[i][t]
                        << ", reference " << want[size_t(i)][size_t(t)];
    return bad;
  }

  // Every field of every batch of a group, position by position. Returns the rows compared.
  static int64_t compare_group(const json& g) {
    const std::string name = g["template"].get<std::string>() + "/" + g["name"].get<std::string>();
    auto got = batches_of(g);
    const json& want = g["batches"];
    EXPECT_EQ(got.size(), want.size()) << name;
    int64_t rows = 0;
    for (size_t b = 0; b < std::min(got.size(), want.size()); ++b) {
      const std::string where = name + " batch " + std::to_string(b);
      const auto& w = want[b];
      EXPECT_EQ(compare(got[b].input_ids, w["input_ids"], where + " input_ids"), 0);
      EXPECT_EQ(compare(got[b].labels, w["labels"], where + " labels"), 0);
      EXPECT_EQ(compare(got[b].k_mask, w["k_mask"], where + " k_mask"), 0);
      EXPECT_EQ(compare(got[b].attn_mask, w["attn_mask"], where + " attn_mask"), 0);
      EXPECT_EQ(got[b].rows.size(), w["length"].size()) << where;
      if (got[b].rows.size() != w["length"].size()) continue;
      for (size_t i = 0; i < got[b].rows.size(); ++i, ++rows) {
        const auto& r = got[b].rows[i];
        const std::string row =
            where + " row " + std::to_string(i) + " (" + got[b].sources[i] + ")";
        EXPECT_EQ(r.length, w["length"][i].get<int64_t>()) << row;
        EXPECT_EQ(r.c_begin, w["c_span"][i][0].get<int64_t>()) << row << " c_span begin";
        EXPECT_EQ(r.c_end, w["c_span"][i][1].get<int64_t>()) << row << " c_span end";
        EXPECT_EQ(r.k_begin, w["k_span"][i][0].get<int64_t>()) << row << " K begin";
        EXPECT_EQ(r.k_end, w["k_span"][i][1].get<int64_t>()) << row << " K end";
        for (size_t t = 0; t < r.query_mask.size(); ++t)
          if (int64_t(r.query_mask[t]) != w["attn_mask"][i][t].get<int64_t>()) {
            ADD_FAILURE() << row << " query_mask position " << t;
            break;
          }
        EXPECT_EQ(got[b].unsafe[int64_t(i)].item<float>(), w["unsafe"][i].get<float>())
            << row << " unsafe";
      }
    }
    return rows;
  }
};

const char* kTemplates[] = {"qwen", "llama"};

// 62 STAR-1 records per template, batches of 4, no truncation. The records are annotated five ways
// (U|K at a sentence end, at a blank line so that ".\n\n" straddles it, inside words at both ends,
// K = the last sentence of the thinking, a two-sentence U); 9 are benign (source 4o_rewrite).
// Catches: an off-by-one in the K span (the reference's own k_start = len(query) -/+ 1 + len(U)),
// a token straddling U|K or K's end given to the wrong side, labels not masking the prompt (or
// masking one token too many), a query length counted on the wrong rendering (without the
// generation prompt, or with the thinking cut out by the unedited template), the response located
// at the wrong place, padding with a wrong id or a label other than -100, k_mask or attn_mask off
// their spans, c_span not starting after the query, and the safety label ignoring the source.
TEST_F(RecordsBatch, SixtyRecordsOnBothTemplatesEqualTheReference) {
  const json& st = reference().cases["stats"];
  for (const char* t : kTemplates) {
    const json& s = st[t];
    // The reference's coverage of the cases that matter (else the comparison proves little).
    EXPECT_GE(s["records"].get<int>(), 50) << t;
    EXPECT_GE(s["u_k_boundary_inside_token"].get<int>(), 5) << t;
    EXPECT_GE(s["k_end_inside_token"].get<int>(), 5) << t;
    EXPECT_GE(s["k_at_thinking_end"].get<int>(), 5) << t;
    EXPECT_GE(s["benign"].get<int>(), 3) << t;
    EXPECT_EQ(compare_group(group(t, "main")), s["records"].get<int64_t>()) << t;
  }
}

// Default --max-seq-len policy on rows longer than the limit whose K lies in the first tokens: the
// head stays (8 rows, all cut). Catches: cutting from the left by default, spans or labels not
// cut with the ids, K clamped when it fits.
TEST_F(RecordsBatch, DefaultTruncationKeepsTheHead) {
  for (const char* t : kTemplates) {
    EXPECT_GE(reference().cases["stats"][t]["head_truncated"].get<int>(), 3) << t;
    EXPECT_EQ(compare_group(group(t, "head")), 8) << t;
  }
}

// --reference-compat with a limit that forces the reference's left truncation into the query on
// some rows (others fit or keep their head, in the same batches). Our c_span moves with the tokens:
// it is [query_len - cut, k_begin - cut) and still covers U, while the reference's c_span stays at
// its untruncated [len(query_ids), k_start) and so pools tokens shifted by the cut
// (docs/training.md, "Truncation policy"). Catches: c_span not shifted on truncation (the
// reference's quirk), K or labels not shifted, the query mask not cut with the query, left
// truncation used when the head holds the query, U and K.
TEST_F(RecordsBatch, ReferenceCompatLeftTruncationShiftsCSpan) {
  for (const char* t : kTemplates) {
    const json& s = reference().cases["stats"][t];
    EXPECT_GE(s["compat_left_rows"].get<int>(), 2) << t;
    const json& g = group(t, "compat_left");
    EXPECT_EQ(compare_group(g), s["compat_left_rows"].get<int64_t>() +
                                    s["compat_fit_rows"].get<int64_t>() +
                                    s["compat_head_rows"].get<int64_t>())
        << t;
    // Where the cut happened, ours differs from the reference's unshifted c_span by exactly the
    // cut.
    int64_t cut_rows = 0;
    for (const auto& b : g["batches"])
      for (size_t i = 0; i < b["length"].size(); ++i) {
        const int64_t cut = b["truncated_left"][i];
        if (cut == 0) continue;
        ++cut_rows;
        EXPECT_EQ(b["c_span"][i][0].get<int64_t>(),
                  b["reference_c_span"][i][0].get<int64_t>() - cut);
        EXPECT_EQ(b["c_span"][i][1].get<int64_t>(),
                  b["reference_c_span"][i][1].get<int64_t>() - cut);
        EXPECT_GT(b["c_span"][i][0].get<int64_t>(), 0) << "the query is cut, not removed";
      }
    EXPECT_EQ(cut_rows, s["compat_left_rows"].get<int64_t>()) << t;
  }
}

// A query longer than --max-seq-len is an error naming its record (line 2 of the file; line 1
// fits by keeping its head), and with --reference-compat so is a response that alone exceeds the
// limit (the left cut would go into U). Catches: a silent cut through the query or U (training
// on a K without its U), and an error that names the wrong record or none.
TEST_F(RecordsBatch, QueryLongerThanTheLimitIsAnError) {
  for (const char* t : kTemplates)
    for (const char* name : {"query_too_long", "compat_cuts_u"}) {
      const json& g = group(t, name);
      ASSERT_TRUE(g["expect_error"].is_array());
      try {
        batches_of(g);
        ADD_FAILURE() << t << "/" << name << ": no error";
      } catch (const Error& e) {
        for (const auto& part : g["expect_error"])
          EXPECT_NE(std::string(e.what()).find(part.get<std::string>()), std::string::npos)
              << t << "/" << name << ": " << e.what() << " lacks '" << part.get<std::string>()
              << "'";
      }
    }
}

// `safekey train` on 8 of these text records (the model folder holds the real R1-Distill-Qwen
// tokenizer and chat template; the model is a tiny random Qwen2 over the real 151,936-token
// vocabulary), SFT + QMM + safety head, 12 steps of 2 rows: every loss term finite, the SFT loss
// falls and the objectives run in the last epochs. Catches: text records that do not reach the
// trainer (template or tokenizer not found in the model folder), ids outside the model's
// vocabulary, spans that make QMM or the head skip every row or give NaN, and an optimizer that
// does not train.
TEST_F(RecordsBatch, TrainOnTextRecordsLossFalls) {
  const std::string dir = test::make_temp_dir("records_train");
  json cfg = test::tiny_config_json(151936, 32, 2);
  cfg["bos_token_id"] = 151646;
  cfg["eos_token_id"] = 151643;
  write_file_atomic(dir + "/config.json", cfg.dump());
  const std::string model = dir + "/model";
  auto r = test::run_safekey(
      {"init", "--config", dir + "/config.json", "--seed", "3", "--out", model, "--tokenizer",
       reference().dir + "/" +
           reference().cases["templates"]["qwen"]["model_dir"].get<std::string>()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(reference().cases["stats"]["train_records"].get<int>(), 8);
  r = test::run_safekey({"train",
                         "--model",
                         model,
                         "--data",
                         reference().dir + "/train.jsonl",
                         "--output-dir",
                         dir + "/run",
                         "--num-train-epochs",
                         "3",
                         "--per-device-train-batch-size",
                         "2",
                         "--gradient-accumulation-steps",
                         "1",
                         "--learning-rate",
                         "1e-2",
                         "--warmup-ratio",
                         "0",
                         "--max-seq-len",
                         "96",
                         "--key-sentence-prediction",
                         "--safety-head",
                         "--last-k-epoch",
                         "2",
                         "--threads",
                         "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto m = train::read_metrics(dir + "/run/metrics.jsonl");
  ASSERT_EQ(m.size(), 12u);
  for (const auto& s : m) {
    EXPECT_TRUE(std::isfinite(s.loss) && std::isfinite(s.sft_loss) && std::isfinite(s.k_loss) &&
                std::isfinite(s.head_loss) && std::isfinite(s.grad_norm))
        << "step " << s.step;
    EXPECT_EQ(s.qmm_skipped_rows, 0) << "step " << s.step;
    EXPECT_EQ(s.head_skipped_rows, 0) << "step " << s.step;
  }
  EXPECT_NEAR(m.front().sft_loss, std::log(151936.0), 1.0)
      << "a random model starts near ln(vocab)";
  EXPECT_LT(m.back().sft_loss, m.front().sft_loss - 1.5) << "the SFT loss did not fall";
  EXPECT_GT(m.back().k_loss, 0.0) << "QMM was not on in the last epochs";
  EXPECT_GT(m.back().head_loss, 0.0) << "the safety head was not on in the last epochs";
}

}  // namespace
}  // namespace safekey
