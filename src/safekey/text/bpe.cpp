#include "safekey/text/bpe.h"

#include <algorithm>
#include <queue>

#include "safekey/text/unicode.h"

namespace safekey::text {

std::unique_ptr<Bpe> Bpe::from_json(const json& model, const std::string& where_in) {
  std::string where = where_in + ": model";
  SK_CHECK(model.is_object(), where, ": expected an object");
  std::string type = json_get_or<std::string>(model, "type", "BPE", where);
  if (type != "BPE") {
    fail(where, ": unsupported model type '", type, "' (only byte-level BPE is implemented)");
  }
  SK_CHECK(model.contains("vocab"), where, ": missing field 'vocab'");
  SK_CHECK(model["vocab"].is_object(), where,
           ": field 'vocab' must be an object (BPE vocab); is this a Unigram/WordPiece model?");
  double dropout = json_get_or<double>(model, "dropout", 0.0, where);
  SK_CHECK(dropout == 0.0, where, ": BPE dropout is not supported");
  SK_CHECK(!json_get_or<bool>(model, "byte_fallback", false, where), where, ": byte_fallback is not supported");
  SK_CHECK(json_get_or<std::string>(model, "continuing_subword_prefix", "", where).empty(), where,
           ": continuing_subword_prefix is not supported");
  SK_CHECK(json_get_or<std::string>(model, "end_of_word_suffix", "", where).empty(), where,
           ": end_of_word_suffix is not supported");

  auto bpe = std::make_unique<Bpe>();
  bpe->ignore_merges_ = json_get_or<bool>(model, "ignore_merges", false, where);
  const json& vocab = model.at("vocab");
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    SK_CHECK(it.value().is_number_integer(), where, ".vocab['", it.key(), "']: expected an integer id");
    int64_t id = it.value().get<int64_t>();
    SK_CHECK(id >= 0 && id < (1ll << 31), where, ".vocab['", it.key(), "']: id ", id, " out of range");
    max_id = std::max(max_id, id);
  }
  SK_CHECK(max_id < static_cast<int64_t>(vocab.size()) * 4 + 1024, where, ".vocab: ids are too sparse");
  bpe->id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  bpe->byte_len_.assign(static_cast<size_t>(max_id + 1), 0);
  bpe->vocab_.reserve(vocab.size());
  bpe->raw_vocab_.reserve(vocab.size());
  std::fill(std::begin(bpe->byte_id_), std::end(bpe->byte_id_), -1);
  std::string raw;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    int32_t id = static_cast<int32_t>(it.value().get<int64_t>());
    const std::string& tok = it.key();
    bpe->id_to_token_[static_cast<size_t>(id)] = tok;
    bpe->vocab_[tok] = id;
    raw.clear();
    if (byte_level_to_bytes(tok, raw) && !raw.empty()) {
      bpe->byte_len_[static_cast<size_t>(id)] = static_cast<uint32_t>(raw.size());
      bpe->raw_vocab_.emplace(raw, id);
      if (raw.size() == 1) bpe->byte_id_[static_cast<unsigned char>(raw[0])] = id;
    }
  }
  for (int b = 0; b < 256; ++b) {
    SK_CHECK(bpe->byte_id_[b] >= 0, where, ".vocab: no token for byte 0x", std::hex, b,
             " (a byte-level BPE vocabulary must hold all 256 bytes)");
  }

  auto mit = model.find("merges");
  SK_CHECK(mit != model.end() && mit->is_array(), where, ": missing array 'merges'");
  const json& merges = *mit;
  size_t cap = 1;
  while (cap < merges.size() * 2 + 16) cap <<= 1;
  bpe->merges_.assign(cap, MergeSlot{});
  for (size_t r = 0; r < merges.size(); ++r) {
    const json& m = merges[r];
    std::string a, b;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      SK_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, where, ".merges[", r,
               "]: expected \"left right\", got ", json(s).dump());
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      fail(where, ".merges[", r, "]: expected a string \"a b\" or a pair [\"a\", \"b\"]");
    }
    auto ia = bpe->vocab_.find(a), ib = bpe->vocab_.find(b), ic = bpe->vocab_.find(a + b);
    SK_CHECK(ia != bpe->vocab_.end(), where, ".merges[", r, "]: token ", json(a).dump(), " is not in the vocab");
    SK_CHECK(ib != bpe->vocab_.end(), where, ".merges[", r, "]: token ", json(b).dump(), " is not in the vocab");
    SK_CHECK(ic != bpe->vocab_.end(), where, ".merges[", r, "]: merged token ", json(a + b).dump(),
             " is not in the vocab");
    bpe->add_merge(ia->second, ib->second, static_cast<int32_t>(r), ic->second);
  }
  bpe->merge_count_ = merges.size();
  return bpe;
}

void Bpe::add_merge(int32_t a, int32_t b, int32_t rank, int32_t id) {
  uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  size_t mask = merges_.size() - 1;
  size_t h = (key * 0x9E3779B97F4A7C15ull) >> 20;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    MergeSlot& s = merges_[i];
    if (s.key == key) return;  // duplicate merge: the first (lowest rank) wins
    if (s.key == ~0ull) {
      s = {key, rank, id};
      return;
    }
  }
}

const std::string& Bpe::id_to_token(int32_t id) const {
  static const std::string empty;
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return empty;
  return id_to_token_[static_cast<size_t>(id)];
}

int32_t Bpe::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

bool Bpe::token_bytes(int32_t id, std::string& out) const {
  out.clear();
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return false;
  return byte_level_to_bytes(id_to_token_[static_cast<size_t>(id)], out);
}

// Merges the lowest-rank adjacent pair until none is left (leftmost first among equal ranks).
void Bpe::bpe(std::string_view word, std::vector<int32_t>& out) const {
  size_t n = word.size();
  std::vector<int32_t> sym(n);
  for (size_t i = 0; i < n; ++i) sym[i] = byte_id_[static_cast<unsigned char>(word[i])];
  if (n <= 48) {  // short words: rescan, no allocation beyond `sym`
    while (sym.size() > 1) {
      int32_t best_rank = INT32_MAX, best_id = 0, rank = 0, id = 0;
      size_t best = 0;
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        if (find_merge(sym[i], sym[i + 1], rank, id) && rank < best_rank) {
          best_rank = rank;
          best_id = id;
          best = i;
        }
      }
      if (best_rank == INT32_MAX) break;
      sym[best] = best_id;
      sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    out.insert(out.end(), sym.begin(), sym.end());
    return;
  }
  // Long words: doubly linked symbols and a heap of candidate merges (stale entries skipped).
  std::vector<int> prev(n), next(n);
  std::vector<char> alive(n, 1);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int>(i) + 1 : -1;
  }
  struct Cand {
    int32_t rank;
    int pos;
    int32_t left, right;  // the pair when pushed (to detect stale entries)
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int i) {
    if (i < 0 || next[i] < 0) return;
    int32_t rank = 0, id = 0;
    if (find_merge(sym[i], sym[next[i]], rank, id)) heap.push({rank, i, sym[i], sym[next[i]]});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int>(i));
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    int i = c.pos;
    if (!alive[i] || next[i] < 0 || sym[i] != c.left || sym[next[i]] != c.right) continue;
    int32_t rank = 0, id = 0;
    find_merge(sym[i], sym[next[i]], rank, id);
    int j = next[i];
    sym[i] = id;
    alive[j] = 0;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    push(prev[i]);
    push(i);
  }
  for (int i = 0; i >= 0; i = next[i]) out.push_back(sym[i]);
}

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& ids, std::vector<uint32_t>* lens) const {
  size_t start = ids.size();
  if (word.size() == 1) {
    ids.push_back(byte_id_[static_cast<unsigned char>(word[0])]);
    if (lens) lens->push_back(1);
    return;
  }
  if (ignore_merges_) {
    auto it = raw_vocab_.find(std::string(word));
    if (it != raw_vocab_.end()) {
      ids.push_back(it->second);
      if (lens) lens->push_back(static_cast<uint32_t>(word.size()));
      return;
    }
  }
  if (word.size() <= kMaxCachedWord) {
    size_t h = std::hash<std::string_view>()(word);
    Shard& sh = cache_[h % kShards];
    {
      std::lock_guard<std::mutex> lock(sh.mu);
      auto it = sh.map.find(std::string(word));
      if (it != sh.map.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
      }
    }
    if (ids.size() == start) {
      bpe(word, ids);
      std::vector<int32_t> v(ids.begin() + static_cast<std::ptrdiff_t>(start), ids.end());
      std::lock_guard<std::mutex> lock(sh.mu);
      if (sh.map.size() >= kShardCapacity) sh.map.clear();
      sh.map.emplace(std::string(word), std::move(v));
    }
  } else {
    bpe(word, ids);
  }
  if (lens) {
    for (size_t i = start; i < ids.size(); ++i) lens->push_back(byte_len_[static_cast<size_t>(ids[i])]);
  }
}

}  // namespace safekey::text
