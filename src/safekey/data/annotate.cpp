// The rule-based U / K annotator; see annotate.h for the rules and docs/data.md for the cue lists.
#include "safekey/data/annotate.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

#include "safekey/data/response.h"
#include "safekey/data/sentences.h"

namespace safekey::data {
namespace {

// Lowercase ASCII, typographic apostrophes as "'".
std::string fold(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t at = i;
    const char32_t c = utf8_next(s, i);
    if (c == 0x2019 || c == 0x2018)
      out += '\'';
    else if (c < 0x80)
      out += static_cast<char>(std::tolower(static_cast<int>(c)));
    else
      out.append(s.substr(at, i - at));
  }
  return out;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

template <size_t N>
bool starts_with_any(std::string_view s, const std::array<const char*, N>& list) {
  return std::any_of(list.begin(), list.end(), [&](const char* p) { return starts_with(s, p); });
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '\''; }

// `phrase` occurs in `s` with word boundaries on both sides.
bool has_phrase(std::string_view s, std::string_view phrase) {
  for (size_t at = s.find(phrase); at != std::string_view::npos; at = s.find(phrase, at + 1)) {
    const bool left = at == 0 || !is_word_char(s[at - 1]);
    const size_t e = at + phrase.size();
    const bool right = e >= s.size() || !is_word_char(s[e]);
    if (left && right) return true;
  }
  return false;
}

// Drops leading discourse markers: "okay, so ", "alright, ", "well, ".
std::string_view strip_discourse(std::string_view s) {
  static const std::array<const char*, 10> kMarkers = {"okay", "ok", "alright", "all right", "so",
                                                      "well", "now", "right", "then", "and"};
  for (bool again = true; again;) {
    again = false;
    for (const char* m : kMarkers) {
      const std::string_view mv(m);
      if (!starts_with(s, mv) || (s.size() > mv.size() && is_word_char(s[mv.size()]))) continue;
      s.remove_prefix(mv.size());
      while (!s.empty() && (s.front() == ',' || s.front() == ' ')) s.remove_prefix(1);
      again = true;
      break;
    }
  }
  return s;
}

// The sentence speaks of the user or the request.
bool has_user_cue(std::string_view low) {
  static const std::array<const char*, 18> kCues = {
      "user", "user's", "users", "request", "question", "query", "prompt", "asking", "asked",
      "asks", "wants me", "want me", "they want", "they're", "they are", "someone", "the person",
      "this person"};
  return std::any_of(kCues.begin(), kCues.end(), [&](const char* c) { return has_phrase(low, c); });
}

// The sentence restates the task in the first person (after discourse markers).
bool has_task_cue(std::string_view d) {
  static const std::array<const char*, 13> kCues = {
      "i need to", "i have to", "i'm trying to", "i am trying to", "i want to", "i'm supposed to",
      "i've been asked", "i have been asked", "i'm being asked", "i am being asked", "i was asked",
      "let me figure out", "i'm looking at"};
  return starts_with_any(d, kCues);
}

// A generic opener that names no content: "I need to figure out how to respond to this request."
// ("... respond to the user's query about X" names content and is not generic.)
bool is_generic_opener(std::string_view d) {
  static const std::array<const char*, 6> kOpeners = {
      "i need to figure out how to", "i need to figure out the best way to", "i need to decide how to",
      "i have to figure out how to", "let me figure out how to", "i need to think about how to"};
  static const std::array<const char*, 7> kVerbs = {"respond", "handle", "approach", "answer",
                                                   "reply", "deal with", "address"};
  for (const char* o : kOpeners) {
    if (!starts_with(d, o)) continue;
    std::string_view rest = d.substr(std::string_view(o).size());
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (!starts_with_any(rest, kVerbs)) return false;
    const auto words = std::count(rest.begin(), rest.end(), ' ') + 1;
    return words <= 8 && rest.find_first_of(":\"") == std::string_view::npos &&
           !has_phrase(rest, "about") && !has_phrase(rest, "regarding");
  }
  return false;
}

// Reading the request again before restating it: "Let me read it again carefully."
bool is_preamble(std::string_view d) {
  static const std::array<const char*, 7> kCues = {
      "let me read", "let me look at", "let me start by understanding", "let me start by reading",
      "let me first read", "let me re-read", "let me reread"};
  return starts_with_any(d, kCues);
}

// How a later sentence continues the restatement (after discourse markers): 2 = it names the
// user or the request ("The user wants ..."), 1 = a weaker continuation ("They also ..."), 0 = no.
int continuation_strength(std::string_view d) {
  static const std::array<const char*, 9> kStrong = {
      "the user", "this user", "the request", "the question", "the query", "the prompt", "the message",
      "the person", "the individual"};
  static const std::array<const char*, 13> kWeak = {
      "they ", "they're", "they've", "they'd", "their ", "it also", "also,", "specifically",
      "in other words", "he ", "she ", "basically", "the scenario"};
  if (starts_with_any(d, kStrong)) return 2;
  return starts_with_any(d, kWeak) ? 1 : 0;
}

// First-person decisions and reactions: such a sentence is a key sentence, never part of U.
bool has_decision_cue(std::string_view low) {
  static const std::array<const char*, 19> kCues = {
      "i need to", "i have to", "i should", "i shouldn't", "i can't", "i cannot", "i must",
      "i remember", "i'm not sure", "let me", "hmm", "wait", "however", "first,", "red flag",
      "safety polic", "guideline", "refuse", "i'll"};
  return std::any_of(kCues.begin(), kCues.end(),
                     [&](const char* c) { return low.find(c) != std::string_view::npos; });
}

// Judgement words: they stop a weak continuation or an overlap-only one (not "The user wants ...").
bool has_judgement_cue(std::string_view low) {
  static const std::array<const char*, 17> kCues = {
      "policy", "policies", "concern", "harmful", "dangerous", "illegal", "unethical", "inappropriate",
      "sensitive", "problematic", "serious", "tricky", "worr", "risk", "not allowed", "against",
      "the catch"};
  return std::any_of(kCues.begin(), kCues.end(),
                     [&](const char* c) { return low.find(c) != std::string_view::npos; });
}

const std::set<std::string>& stopwords() {
  static const std::set<std::string> s = {
      "that", "this", "with", "from", "they", "their", "them", "there", "what", "when", "where",
      "which", "would", "could", "should", "about", "have", "been", "being", "into", "some", "like",
      "just", "want", "wants", "asking", "asked", "user", "users", "also", "more", "than", "then",
      "your", "will", "these", "those", "make", "help", "need", "know", "okay", "does", "doing",
      "really", "very", "only", "even", "because", "while", "here", "each", "other", "such",
      "much", "many", "most", "over", "under", "well", "were", "said", "it's", "that's", "i'm"};
  return s;
}

std::set<std::string> content_words(std::string_view low) {
  std::set<std::string> out;
  std::string w;
  auto flush = [&] {
    while (!w.empty() && w.back() == '\'') w.pop_back();
    if (w.size() >= 4 && !stopwords().count(w)) out.insert(w);
    w.clear();
  };
  for (char c : low) {
    if (is_word_char(c) || (static_cast<unsigned char>(c) >= 0x80))
      w += c;
    else
      flush();
  }
  flush();
  return out;
}

}  // namespace

std::vector<SpanAnnotation> SpanAnnotator::annotate_all(const std::vector<Record>& records) {
  std::vector<SpanAnnotation> out;
  out.reserve(records.size());
  for (const auto& r : records) out.push_back(annotate(r));
  return out;
}

SpanAnnotation RuleAnnotator::annotate(const Record& record) {
  SpanAnnotation a;
  const std::string_view resp = record.response;
  const size_t close = resp.find(kThinkClose);
  if (!starts_with(resp, kThinkOpen) || close == std::string_view::npos) {
    a.error = "the normalised response has no <think>...</think> block";
    return a;
  }
  const std::string_view thinking = resp.substr(kThinkOpen.size(), close - kThinkOpen.size());
  const size_t answer_at = close + kThinkClose.size();
  const std::string_view answer = resp.substr(answer_at);
  // Byte offset into the response -> code point offset.
  auto cp = [&](size_t byte) { return static_cast<int64_t>(codepoint_count(resp.substr(0, byte))); };

  const std::vector<Sentence> s = split_sentences(thinking);
  a.thinking_sentences = static_cast<int>(s.size());
  auto text = [&](size_t i) { return thinking.substr(s[i].begin, s[i].end - s[i].begin); };
  auto flag = [&](const char* f) { a.flags.emplace_back(f); };

  size_t u_end_byte;  // in the response
  size_t u = 0;
  if (s.empty()) {
    flag("empty_thinking");
    a.rule = "empty_thinking";
    u_end_byte = answer_at;
  } else {
    const std::set<std::string> q_words = content_words(fold(record.question));
    auto overlaps = [&](std::string_view low) {
      const std::set<std::string> w = content_words(low);
      size_t shared = 0;
      for (const auto& x : w) shared += q_words.count(x);
      return !w.empty() && static_cast<int>(shared) >= options_.overlap_min_words &&
             static_cast<double>(shared) >= options_.overlap_threshold * static_cast<double>(w.size());
    };
    auto restates = [&](size_t i) {  // a sentence after the first that may join U
      const std::string low = fold(text(i));
      if (has_decision_cue(low)) return 0;
      const int strength = continuation_strength(strip_discourse(low));
      if (strength == 2) return 1;
      if (has_judgement_cue(low)) return 0;
      if (strength == 1) return 1;
      return overlaps(low) ? 2 : 0;
    };
    const std::string low0 = fold(text(0));
    const std::string_view d0 = strip_discourse(low0);
    u = 1;
    const bool preamble = s.size() > 2 && is_preamble(strip_discourse(fold(text(1))));
    if (is_generic_opener(d0) && s.size() > 1 && restates(1) == 1) {
      a.rule = "meta_opener";
      u = 2;
    } else if (is_generic_opener(d0) && preamble && restates(2) == 1) {
      a.rule = "meta_opener";
      u = 3;
    } else {
      if (is_generic_opener(d0)) flag("generic_opener");
      if (has_user_cue(low0)) {
        a.rule = "user_cue";
      } else if (has_task_cue(d0)) {
        a.rule = "task_cue";
      } else if (overlaps(low0)) {
        a.rule = "question_overlap";
      } else {
        a.rule = "default_first";
        flag("no_cue");
      }
    }
    bool cont = false, over = false;
    while (u < s.size()) {
      const int why = restates(u);
      if (why == 0) break;
      if (static_cast<int>(u) >= options_.max_u_sentences) {
        flag("u_long");
        break;
      }
      (why == 1 ? cont : over) = true;
      ++u;
    }
    if (cont) a.rule += "+continuation";
    if (over) a.rule += "+overlap";
    u_end_byte = kThinkOpen.size() + s[u - 1].end;
  }
  a.u_sentences = static_cast<int>(u);

  size_t k_end_byte;
  bool k_merged = false;
  if (u < s.size()) {
    k_end_byte = kThinkOpen.size() + s[u].end;
    k_merged = s[u].merged;
  } else {
    const std::vector<Sentence> as = split_sentences(answer);
    if (as.empty()) {
      a.error = "no sentence for K: the thinking has no sentence after U and the answer is empty";
      return a;
    }
    flag("k_in_answer");
    k_end_byte = answer_at + as[0].end;
    k_merged = as[0].merged;
  }
  if (s.size() < 3) flag("short_thinking");
  a.summary_end_idx = cp(u_end_byte);
  a.next_sentence_end_idx = cp(k_end_byte);
  if (static_cast<size_t>(a.summary_end_idx) - kThinkOpen.size() > options_.long_u_chars) flag("long_u");
  if (static_cast<size_t>(a.next_sentence_end_idx - a.summary_end_idx) > options_.long_k_chars) flag("long_k");
  bool merged = k_merged;
  for (size_t i = 0; i < u; ++i) merged = merged || s[i].merged;
  if (merged) flag("abbreviation_merged");
  a.ok = true;
  return a;
}

std::vector<std::string> span_annotator_methods() { return {"rules"}; }

std::unique_ptr<SpanAnnotator> make_span_annotator(const std::string& method, const RuleOptions& options) {
  if (method == "rules") return std::make_unique<RuleAnnotator>(options);
  std::string known;
  for (const auto& m : span_annotator_methods()) known += (known.empty() ? "" : ", ") + m;
  fail("unknown annotation method '", method, "' (available: ", known, ")");
}

}  // namespace safekey::data
