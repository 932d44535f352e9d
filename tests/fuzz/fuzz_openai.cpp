// libFuzzer target for the server's request bodies (serve/openai.cpp, no server started): the input
// is a body given to both /v1/chat/completions and /v1/completions. Every body must end in a parsed
// request within the limits or an ApiError whose JSON the server can send; nothing may throw. The
// text of the parsed messages / prompt also drives the reasoning split, whole and streamed in
// pieces, which must agree.
#include <cmath>
#include <cstdint>
#include <cstdlib>

// The parser's own source, compiled here: it is part of safekey_torch, which the fuzz build does not
// make (it needs libtorch's headers only).
#include "safekey/serve/openai.cpp"

using namespace safekey;
using namespace safekey::serve;

namespace {

void check_params(const ParsedRequest& r, const Limits& lim) {
  const auto& p = r.params;
  if (p.max_new_tokens < 1 || p.max_new_tokens > lim.max_tokens_limit) std::abort();
  if (!std::isfinite(p.temperature) || p.temperature < 0 || !(p.top_p > 0 && p.top_p <= 1)) std::abort();
  if (!(p.repetition_penalty > 0) || p.top_k < -1 || p.stop.size() > lim.max_stop) std::abort();
  for (const auto& s : p.stop)
    if (s.empty()) std::abort();
}

// The streamed split (cut every `step` bytes) must equal the split of the whole text.
void check_reasoning(const std::string& text, size_t step) {
  const ReasoningSplit whole = split_reasoning(text);
  ReasoningStream rs;
  std::string r, c;
  for (size_t i = 0; i < text.size(); i += step) rs.push(text.substr(i, step), &r, &c);
  rs.finish(&r, &c);
  if (r != whole.reasoning.value_or("") || c != whole.content.value_or("")) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> served = {"safekey-model", "adapter-a"};
  Limits lim;
  lim.max_messages = 16;
  lim.max_stop = 4;
  for (Endpoint ep : {Endpoint::Chat, Endpoint::Completion}) {
    ParsedRequest pr;
    if (auto e = parse_request(ep, body, served, lim, &pr)) {
      if (e->status < 400 || e->status > 499 || e->message.empty()) std::abort();
      // What the server sends (server.cpp dumps with invalid UTF-8 replaced).
      (void)error_body(*e).dump(-1, ' ', false, json::error_handler_t::replace);
      continue;
    }
    check_params(pr, lim);
    if (ep == Endpoint::Chat) {
      if (pr.request.messages.empty() || pr.request.messages.size() > lim.max_messages) std::abort();
      for (const auto& m : pr.request.messages) {
        if (m.role != "system" && m.role != "user" && m.role != "assistant") std::abort();
        check_reasoning(m.content, 1 + size % 7);
      }
    } else {
      if (pr.request.prompt.empty() == pr.request.prompt_ids.empty()) std::abort();
      check_reasoning(pr.request.prompt, 1 + size % 5);
    }
  }
  return 0;
}
