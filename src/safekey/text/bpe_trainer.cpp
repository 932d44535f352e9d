#include "safekey/text/bpe_trainer.h"

#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "safekey/text/added_tokens.h"
#include "safekey/text/normalizer.h"
#include "safekey/text/pre_tokenizer.h"
#include "safekey/text/unicode.h"

namespace safekey::text {

std::string resolve_pattern(const std::string& pattern) {
  if (pattern == "qwen" || pattern.empty()) return kQwenPattern;
  if (pattern == "llama3") return kLlama3Pattern;
  return pattern;
}

namespace {

ordered_json byte_level_step(const char* type) {
  return ordered_json{{"type", type}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
}

inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

ordered_json train_bpe(const std::vector<std::string>& corpus, const TrainOptions& opt) {
  const std::string pattern = resolve_pattern(opt.pattern);
  size_t n_added = opt.special_tokens.size() + opt.added_tokens.size();
  SK_CHECK(opt.vocab_size >= 256 + n_added, "tokenizer train: --vocab-size ", opt.vocab_size,
           " is smaller than 256 bytes + ", n_added, " added tokens");
  SK_CHECK(opt.min_frequency >= 1, "tokenizer train: --min-frequency must be >= 1");
  std::unordered_set<std::string> seen;
  for (const auto* list : {&opt.special_tokens, &opt.added_tokens})
    for (const std::string& t : *list) {
      SK_CHECK(!t.empty(), "tokenizer train: empty added token");
      utf8_check(t, "tokenizer train: added token");
      SK_CHECK(seen.insert(t).second, "tokenizer train: added token ", json(t).dump(), " given twice");
    }
  if (!opt.bos_token.empty())
    SK_CHECK(seen.count(opt.bos_token), "tokenizer train: bos token ", json(opt.bos_token).dump(),
             " is not among the special/added tokens");

  // The same pipeline the written tokenizer.json describes.
  ordered_json split = {{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}};
  ordered_json pre = {{"type", "Sequence"}, {"pretokenizers", {split, byte_level_step("ByteLevel")}}};
  auto pre_tok = PreTokenizer::from_json(json::parse(pre.dump()), "tokenizer train: --pattern");
  Normalizer normalizer = Normalizer::from_json(opt.nfc ? json{{"type", "NFC"}} : json(), "tokenizer train");
  AddedVocabulary added;
  int32_t next_added = 0;
  for (const auto* list : {&opt.special_tokens, &opt.added_tokens})
    for (const std::string& t : *list) added.add({next_added++, t, list == &opt.special_tokens}, t);

  // Word counts.
  std::unordered_map<std::string, int64_t> counts;
  std::vector<AddedSplit> splits;
  std::vector<Piece> pieces;
  NormalizedText nt;
  for (size_t d = 0; d < corpus.size(); ++d) {
    const std::string& doc = corpus[d];
    utf8_check(doc, cat("tokenizer train: corpus document ", d));
    splits.clear();
    added.split(doc, 0, static_cast<uint32_t>(doc.size()), false, splits);
    for (const AddedSplit& s : splits) {
      if (s.id >= 0) continue;
      std::string_view seg = std::string_view(doc).substr(s.start, s.end - s.start);
      std::string_view norm = normalizer.normalize(seg, nt) ? std::string_view(nt.text) : seg;
      pieces.assign(1, Piece{0, static_cast<uint32_t>(norm.size()), false});
      pre_tok->split(norm, pieces);
      for (const Piece& p : pieces) ++counts[std::string(norm.substr(p.start, p.end - p.start))];
    }
  }

  // Token table: bytes in bytes_to_unicode order.
  std::vector<std::string> tok_bytes;
  std::unordered_map<std::string, int32_t> tok_id;
  std::vector<int32_t> byte_tok(256);
  {
    std::vector<std::pair<uint32_t, int>> order;
    for (int b = 0; b < 256; ++b) order.push_back({byte_to_unicode(static_cast<uint8_t>(b)), b});
    std::sort(order.begin(), order.end());
    for (auto [cp, b] : order) {
      byte_tok[b] = static_cast<int32_t>(tok_bytes.size());
      tok_id[std::string(1, static_cast<char>(b))] = byte_tok[b];
      tok_bytes.push_back(std::string(1, static_cast<char>(b)));
    }
  }
  // Words as symbol sequences (sorted for determinism).
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<int32_t>> words(sorted.size());
  std::vector<int64_t> freq(sorted.size());
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  for (size_t w = 0; w < sorted.size(); ++w) {
    for (unsigned char c : sorted[w].first) words[w].push_back(byte_tok[c]);
    freq[w] = sorted[w].second;
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      uint64_t k = pair_key(words[w][i], words[w][i + 1]);
      pair_count[k] += freq[w];
      where[k].push_back(static_cast<int32_t>(w));
    }
  }
  struct Cand {
    int64_t count;
    uint64_t key;
  };
  auto worse = [&](const Cand& x, const Cand& y) {  // heap order: higher count, then smaller bytes
    if (x.count != y.count) return x.count < y.count;
    int32_t xa = static_cast<int32_t>(x.key >> 32), xb = static_cast<int32_t>(x.key & 0xFFFFFFFF);
    int32_t ya = static_cast<int32_t>(y.key >> 32), yb = static_cast<int32_t>(y.key & 0xFFFFFFFF);
    if (tok_bytes[xa] != tok_bytes[ya]) return tok_bytes[xa] > tok_bytes[ya];
    return tok_bytes[xb] > tok_bytes[yb];
  };
  std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> heap(worse);
  for (auto& [k, c] : pair_count) heap.push({c, k});

  const size_t target_tokens = opt.vocab_size - n_added;
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int32_t> touched;
  std::vector<char> mark(words.size(), 0);
  size_t wanted = target_tokens > 256 ? target_tokens - 256 : 0;
  while (tok_bytes.size() < target_tokens && !heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    auto pc = pair_count.find(c.key);
    if (pc == pair_count.end() || pc->second != c.count) continue;  // stale
    if (c.count < opt.min_frequency) break;
    int32_t a = static_cast<int32_t>(c.key >> 32), b = static_cast<int32_t>(c.key & 0xFFFFFFFF);
    std::string merged = tok_bytes[a] + tok_bytes[b];
    int32_t nid;
    auto ex = tok_id.find(merged);
    if (ex != tok_id.end()) {
      nid = ex->second;
    } else {
      nid = static_cast<int32_t>(tok_bytes.size());
      tok_bytes.push_back(merged);
      tok_id[merged] = nid;
    }
    merges.push_back({a, b});
    // Re-count the words that hold the pair.
    touched.clear();
    for (int32_t w : where[c.key])
      if (!mark[w]) {
        mark[w] = 1;
        touched.push_back(w);
      }
    std::unordered_map<uint64_t, int64_t> delta;
    for (int32_t w : touched) {
      mark[w] = 0;
      std::vector<int32_t>& s = words[w];
      bool has = false;
      for (size_t i = 0; i + 1 < s.size(); ++i) has |= s[i] == a && s[i + 1] == b;
      if (!has) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i) delta[pair_key(s[i], s[i + 1])] -= freq[w];
      std::vector<int32_t> t;
      t.reserve(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          t.push_back(nid);
          ++i;
        } else {
          t.push_back(s[i]);
        }
      }
      s.swap(t);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        uint64_t k = pair_key(s[i], s[i + 1]);
        delta[k] += freq[w];
        if (s[i] == nid || s[i + 1] == nid) where[k].push_back(w);
      }
    }
    for (auto& [k, d] : delta) {
      if (d == 0) continue;
      int64_t& v = pair_count[k];
      v += d;
      if (v > 0) heap.push({v, k});
    }
    pair_count.erase(c.key);
    where.erase(c.key);
    if (opt.progress && merges.size() % 256 == 0) opt.progress(merges.size(), wanted);
  }
  if (opt.progress) opt.progress(merges.size(), wanted);

  // tokenizer.json
  ordered_json vocab = ordered_json::object();
  for (size_t i = 0; i < tok_bytes.size(); ++i) vocab[bytes_to_byte_level(tok_bytes[i])] = i;
  ordered_json merge_list = ordered_json::array();
  for (auto [a, b] : merges)
    merge_list.push_back({bytes_to_byte_level(tok_bytes[static_cast<size_t>(a)]),
                          bytes_to_byte_level(tok_bytes[static_cast<size_t>(b)])});
  ordered_json added_json = ordered_json::array();
  size_t id = tok_bytes.size();
  int32_t bos_id = -1;
  for (const auto* list : {&opt.special_tokens, &opt.added_tokens})
    for (const std::string& t : *list) {
      if (t == opt.bos_token) bos_id = static_cast<int32_t>(id);
      added_json.push_back({{"id", id++}, {"content", t}, {"single_word", false}, {"lstrip", false},
                            {"rstrip", false}, {"normalized", false}, {"special", list == &opt.special_tokens}});
    }
  ordered_json post = byte_level_step("ByteLevel");
  if (bos_id >= 0) {
    ordered_json tmpl = {
        {"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", opt.bos_token}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair",
         {{{"SpecialToken", {{"id", opt.bos_token}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
          {{"SpecialToken", {{"id", opt.bos_token}, {"type_id", 1}}}}, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens", {{opt.bos_token, {{"id", opt.bos_token}, {"ids", {bos_id}}, {"tokens", {opt.bos_token}}}}}}};
    post = {{"type", "Sequence"}, {"processors", {post, tmpl}}};
  }
  ordered_json out;
  out["version"] = "1.0";
  out["truncation"] = nullptr;
  out["padding"] = nullptr;
  out["added_tokens"] = added_json;
  out["normalizer"] = opt.nfc ? ordered_json{{"type", "NFC"}} : ordered_json();
  out["pre_tokenizer"] = pre;
  out["post_processor"] = post;
  out["decoder"] = byte_level_step("ByteLevel");
  out["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", ""},
                  {"end_of_word_suffix", ""},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"ignore_merges", false},
                  {"vocab", vocab},
                  {"merges", merge_list}};
  return out;
}

}  // namespace safekey::text
