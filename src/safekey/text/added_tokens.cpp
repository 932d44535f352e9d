#include "safekey/text/added_tokens.h"

#include "safekey/text/unicode.h"

namespace safekey::text {

void TokenTrie::add(const std::string& s, int32_t index) {
  if (s.empty()) return;
  int32_t n = 0;
  for (unsigned char c : s) {
    int32_t child = -1;
    for (auto& [ch, idx] : nodes_[static_cast<size_t>(n)].next)
      if (ch == c) child = idx;
    if (child < 0) {
      child = static_cast<int32_t>(nodes_.size());
      nodes_[static_cast<size_t>(n)].next.push_back({c, child});
      nodes_.emplace_back();
    }
    n = child;
  }
  if (nodes_[static_cast<size_t>(n)].token < 0) nodes_[static_cast<size_t>(n)].token = index;
  first_[static_cast<unsigned char>(s[0])] = true;
}

int32_t TokenTrie::longest_at(std::string_view text, size_t i, size_t& len) const {
  int32_t n = 0, best = -1;
  len = 0;
  for (size_t k = i; k < text.size(); ++k) {
    int32_t child = -1;
    for (auto& [ch, idx] : nodes_[static_cast<size_t>(n)].next)
      if (ch == static_cast<unsigned char>(text[k])) child = idx;
    if (child < 0) break;
    n = child;
    if (nodes_[static_cast<size_t>(n)].token >= 0) {
      best = nodes_[static_cast<size_t>(n)].token;
      len = k + 1 - i;
    }
  }
  return best;
}

void AddedVocabulary::add(const AddedToken& t, const std::string& normalized_content) {
  size_t index = tokens_.size();
  tokens_.push_back(t);
  by_id_[t.id] = index;
  by_content_.emplace(t.content, index);
  if (t.normalized) {
    norm_trie_.add(normalized_content, static_cast<int32_t>(index));
  } else {
    raw_trie_.add(t.content, static_cast<int32_t>(index));
  }
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::by_content(const std::string& content) const {
  auto it = by_content_.find(content);
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

namespace {
uint32_t char_before(std::string_view s, size_t pos, size_t lo, size_t& start) {
  size_t k = pos;
  do {
    --k;
  } while (k > lo && utf8_is_continuation(static_cast<unsigned char>(s[k])));
  start = k;
  size_t len = 0;
  return utf8_decode(reinterpret_cast<const unsigned char*>(s.data()) + k, len);
}
}  // namespace

void AddedVocabulary::split(std::string_view text, uint32_t start, uint32_t end, bool normalized,
                            std::vector<AddedSplit>& out) const {
  const TokenTrie& trie = normalized ? norm_trie_ : raw_trie_;
  if (trie.empty()) {
    if (end > start) out.push_back({start, end, -1});
    return;
  }
  std::string_view view = text.substr(0, end);
  auto p = reinterpret_cast<const unsigned char*>(text.data());
  uint32_t offset = start;  // end of the previous split
  size_t i = start;
  while (i < end) {
    if (!trie.may_start(p[i])) {
      ++i;
      continue;
    }
    size_t len = 0;
    int32_t idx = trie.longest_at(view, i, len);
    if (idx < 0) {
      ++i;
      continue;
    }
    const AddedToken& t = tokens_[static_cast<size_t>(idx)];
    size_t s = i, e = i + len;
    if (t.single_word) {
      size_t cs = 0, l = 0;
      bool word_before = s > start && is_word_char(char_before(text, s, start, cs));
      bool word_after = e < end && is_word_char(utf8_decode(p + e, l));
      if (word_before || word_after) {  // rejected: the matcher resumes after it
        i = e;
        continue;
      }
    }
    if (t.lstrip) {
      while (s > offset) {
        size_t cs = 0;
        if (!is_white_space(char_before(text, s, offset, cs))) break;
        s = cs;
      }
    }
    if (t.rstrip) {
      size_t l = 0;
      while (e < end && is_white_space(utf8_decode(p + e, l))) e += l;
    }
    if (s > offset) out.push_back({offset, static_cast<uint32_t>(s), -1});
    out.push_back({static_cast<uint32_t>(s), static_cast<uint32_t>(e), t.id});
    offset = static_cast<uint32_t>(e);
    i = e;
  }
  if (offset < end) out.push_back({offset, end, -1});
}

}  // namespace safekey::text
