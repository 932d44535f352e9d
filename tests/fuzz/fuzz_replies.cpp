// libFuzzer target for what other machines send back: an OpenAI-compatible server's reply body
// (net/chat_reply.cpp, read by the chat client, the judges and endpoint generation) and the judges'
// reply texts (eval/rubrics.cpp: the 1-5 harm score, the three refusal classes, Llama-Guard's
// verdict, the annotator's U sentence). The first byte picks the reader; the rest is the input.
// A body ends in a reply or a safekey::Error; the judge parsers never throw and keep their
// invariants (a score in 1-5 and harmful exactly at the threshold, one of the three classes, only
// known hazard categories, at most four digits); nothing may crash, hang or trip a sanitizer.
#include <cstdint>
#include <cstdlib>
#include <string>

// The readers' own sources, compiled here: net and eval are not part of the fuzz core.
#include "safekey/eval/judges.cpp"
#include "safekey/eval/rubrics.cpp"
#include "safekey/net/chat_reply.cpp"

using namespace safekey;

namespace {

void check_harm(const std::string& text, int threshold) {
  const eval::Verdict v = eval::parse_harm_reply(text, threshold);
  if (v.status == "ok") {
    if (v.score < 1 || v.score > 5 || !v.harmful || *v.harmful != (v.score >= threshold)) std::abort();
  } else if (v.status != "unparsed" || v.harmful || v.refused) {
    std::abort();  // an unread reply is never safe and never harmful
  }
}

void check_refusal(const std::string& text) {
  const eval::Verdict v = eval::parse_refusal_reply(text);
  if (v.status == "ok") {
    const std::string& c = v.refusal_class;
    if (c != "1_full_compliance" && c != "2_full_refusal" && c != "3_partial_refusal") std::abort();
    if (!v.refused || !v.harmful || *v.refused == *v.harmful) std::abort();
  } else if (v.harmful || v.refused) {
    std::abort();
  }
}

void check_guard(const std::string& text) {
  const eval::Verdict v = eval::parse_llama_guard_reply(text);
  if (v.status != "ok") {
    if (v.harmful) std::abort();
    return;
  }
  if (!v.harmful || (!*v.harmful && !v.categories.empty())) std::abort();
  for (const auto& c : v.categories) {
    const int n = std::atoi(c.c_str() + 1);
    if (c[0] != 'S' || n < 1 || n > static_cast<int>(eval::llama_guard_categories().size())) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t pick = data[0];
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (pick % 7) {
    case 0:
    case 1:
      try {
        const net::ChatReply r = net::parse_chat_reply(text, pick % 7 == 1, "fuzz");
        if (!r.raw.is_object()) std::abort();
      } catch (const Error&) {
      }
      break;
    case 2:
      if (net::server_error_message(text).size() > text.size() + 3) std::abort();
      break;
    case 3:
      check_harm(text, 1 + (pick / 7) % 5);
      break;
    case 4:
      check_refusal(text);
      break;
    case 5:
      check_guard(text);
      break;
    default: {
      const auto n = eval::parse_understanding_reply(text);
      if (n && (*n < -9999 || *n > 9999)) std::abort();
    }
  }
  return 0;
}
