#include "safekey/text/pre_tokenizer.h"

#include <oniguruma.h>

#include <mutex>

#include "safekey/text/unicode.h"

namespace safekey::text {

const char* const kQwenPattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// ---- Regex ------------------------------------------------------------------------------------
Regex::Regex(const std::string& pattern, const std::string& where) {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding enc = ONIG_ENCODING_UTF8;
    onig_initialize(&enc, 1);
  });
  OnigErrorInfo einfo;
  OnigRegex re = nullptr;
  auto p = reinterpret_cast<const OnigUChar*>(pattern.data());
  int r = onig_new(&re, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8, ONIG_SYNTAX_DEFAULT,
                   &einfo);
  if (r != ONIG_NORMAL) {
    OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
    onig_error_code_to_str(msg, r, &einfo);
    fail(where, ": invalid regex ", json(pattern).dump(), ": ", reinterpret_cast<char*>(msg));
  }
  re_ = re;
}

Regex::~Regex() {
  if (re_) onig_free(static_cast<OnigRegex>(re_));
}

void Regex::find_all(std::string_view text, uint32_t start, uint32_t end,
                     std::vector<std::pair<uint32_t, uint32_t>>& out) const {
  auto re = static_cast<OnigRegex>(re_);
  auto base = reinterpret_cast<const OnigUChar*>(text.data()) + start;
  const OnigUChar* stop = reinterpret_cast<const OnigUChar*>(text.data()) + end;
  OnigRegion* region = onig_region_new();
  const OnigUChar* pos = base;
  while (pos <= stop) {
    int r = onig_search(re, base, stop, pos, stop, region, ONIG_OPTION_NONE);
    if (r < 0) break;  // ONIG_MISMATCH (or an engine error: treat as no more matches)
    uint32_t s = start + static_cast<uint32_t>(region->beg[0]);
    uint32_t e = start + static_cast<uint32_t>(region->end[0]);
    if (e > s) {
      out.push_back({s, e});
      pos = base + (e - start);
    } else {  // empty match: step over one character
      if (base + (s - start) >= stop) break;
      pos = base + (s - start) + utf8_len(text[s]);
    }
  }
  onig_region_free(region, 1);
}

// ---- PreTokenizer -----------------------------------------------------------------------------
namespace {

std::string escape_regex(const std::string& s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u) && u != '_' && u != ' ') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

PreTokenizer::Behavior parse_behavior(const std::string& b, const std::string& where) {
  if (b == "Isolated") return PreTokenizer::Behavior::kIsolated;
  if (b == "Removed") return PreTokenizer::Behavior::kRemoved;
  if (b == "MergedWithPrevious") return PreTokenizer::Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return PreTokenizer::Behavior::kMergedWithNext;
  if (b == "Contiguous") return PreTokenizer::Behavior::kContiguous;
  fail(where, ": unknown Split behavior '", b, "'");
}

void parse_into(const json& j, const std::string& where, std::vector<PreTokenizer::Step>& steps) {
  SK_CHECK(j.is_object(), where, ": expected an object");
  std::string type = json_get<std::string>(j, "type", where);
  using Step = PreTokenizer::Step;
  if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    SK_CHECK(it != j.end() && it->is_array(), where, ": Sequence needs an array 'pretokenizers'");
    for (size_t i = 0; i < it->size(); ++i) parse_into((*it)[i], cat(where, ".pretokenizers[", i, "]"), steps);
  } else if (type == "Split") {
    Step s;
    s.type = Step::Type::kSplit;
    auto pat = j.find("pattern");
    SK_CHECK(pat != j.end() && pat->is_object(), where, ": Split needs an object 'pattern'");
    std::string regex;
    if (pat->contains("Regex")) {
      regex = json_get<std::string>(*pat, "Regex", where + ".pattern");
    } else if (pat->contains("String")) {
      regex = escape_regex(json_get<std::string>(*pat, "String", where + ".pattern"));
    } else {
      fail(where, ".pattern: expected 'Regex' or 'String'");
    }
    s.regex = std::make_unique<Regex>(regex, where + ".pattern");
    s.behavior = parse_behavior(json_get<std::string>(j, "behavior", where), where + ".behavior");
    s.invert = json_get_or<bool>(j, "invert", false, where);
    if (s.behavior == PreTokenizer::Behavior::kIsolated && !s.invert) {
      if (regex == kQwenPattern) s.fast_digits = 1;
      if (regex == kLlama3Pattern) s.fast_digits = 3;
      s.use_fast = s.fast_digits != 0;
    }
    steps.push_back(std::move(s));
  } else if (type == "ByteLevel") {
    Step s;
    s.type = Step::Type::kByteLevel;
    s.add_prefix_space = json_get_or<bool>(j, "add_prefix_space", false, where);
    if (json_get_or<bool>(j, "use_regex", true, where)) {
      s.regex = std::make_unique<Regex>(kGpt2Pattern, where + " (GPT-2 regex)");
    }
    steps.push_back(std::move(s));
  } else {
    fail(where, ": unsupported pre_tokenizer type '", type, "' (supported: Split, ByteLevel, Sequence)");
  }
}

// Applies split behaviour to the matches of one piece.
void apply_behavior(const PreTokenizer::Step& st, const Piece& piece,
                    const std::vector<std::pair<uint32_t, uint32_t>>& matches, std::vector<Piece>& out) {
  using B = PreTokenizer::Behavior;
  // (range, is_match) covering the piece
  struct Part {
    uint32_t s, e;
    bool m;
  };
  std::vector<Part> parts;
  uint32_t prev = piece.start;
  for (auto [s, e] : matches) {
    if (s > prev) parts.push_back({prev, s, st.invert});
    parts.push_back({s, e, !st.invert});
    prev = e;
  }
  if (prev < piece.end) parts.push_back({prev, piece.end, st.invert});
  size_t first_out = out.size();
  bool pending_merge_next = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Part& p = parts[i];
    switch (st.behavior) {
      case B::kIsolated:
        out.push_back({p.s, p.e, false});
        break;
      case B::kRemoved:
        if (!p.m) out.push_back({p.s, p.e, false});
        break;
      case B::kMergedWithPrevious:
        if (p.m && out.size() > first_out) {
          out.back().end = p.e;
        } else {
          out.push_back({p.s, p.e, false});
        }
        break;
      case B::kMergedWithNext:
        if (pending_merge_next) {
          out.back().end = p.e;
        } else {
          out.push_back({p.s, p.e, false});
        }
        pending_merge_next = p.m;
        break;
      case B::kContiguous:
        if (p.m && i > 0 && parts[i - 1].m) {
          out.back().end = p.e;
        } else {
          out.push_back({p.s, p.e, false});
        }
        break;
    }
  }
  if (out.size() > first_out) out[first_out].prefix_space = piece.prefix_space;
}

}  // namespace

PreTokenizer::~PreTokenizer() = default;

std::unique_ptr<PreTokenizer> PreTokenizer::from_json(const json& j, const std::string& where) {
  auto p = std::make_unique<PreTokenizer>();
  if (!j.is_null()) parse_into(j, where, p->steps_);
  return p;
}

bool PreTokenizer::byte_level() const {
  for (const Step& s : steps_)
    if (s.type == Step::Type::kByteLevel) return true;
  return false;
}

void PreTokenizer::set_fast_path(bool on) {
  for (Step& s : steps_) s.use_fast = on && s.fast_digits != 0;
}

void PreTokenizer::split(std::string_view text, std::vector<Piece>& pieces) const {
  std::vector<Piece> next;
  std::vector<std::pair<uint32_t, uint32_t>> matches;
  for (const Step& st : steps_) {
    if (st.type == Step::Type::kByteLevel) {
      if (st.add_prefix_space) {
        for (Piece& p : pieces)
          if (!p.prefix_space && p.end > p.start && text[p.start] != ' ') p.prefix_space = true;
      }
      if (!st.regex) continue;
    }
    next.clear();
    next.reserve(pieces.size() * 2);
    for (const Piece& p : pieces) {
      matches.clear();
      if (st.use_fast) {
        split_qwen_llama(text, p.start, p.end, st.fast_digits, matches);
      } else {
        st.regex->find_all(text, p.start, p.end, matches);
      }
      apply_behavior(st, p, matches, next);
    }
    pieces.swap(next);
  }
}

}  // namespace safekey::text
