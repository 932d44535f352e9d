#include "safekey/net/chat_reply.h"

namespace safekey::net {

ChatReply parse_chat_reply(const std::string& body, bool completions, const std::string& where) {
  ChatReply reply;
  try {
    reply.raw = json::parse(body);
  } catch (const std::exception& e) {
    fail(where, ": reply is not JSON: ", e.what());
  }
  SK_CHECK(reply.raw.is_object(), where, ": reply is not a JSON object");
  const auto choices = reply.raw.find("choices");
  SK_CHECK(choices != reply.raw.end() && choices->is_array() && !choices->empty() && (*choices)[0].is_object(),
           where, ": reply has no choices[0]");
  const json& c = (*choices)[0];
  if (completions) {
    const auto text = c.find("text");
    SK_CHECK(text != c.end() && text->is_string(), where, ": reply choices[0].text is not a string");
    reply.content = text->get<std::string>();
  } else {
    const auto msg = c.find("message");
    SK_CHECK(msg == c.end() || msg->is_object(), where, ": reply choices[0].message is not an object");
    if (msg != c.end()) {
      if (msg->contains("content") && (*msg)["content"].is_string()) reply.content = (*msg)["content"];
      if (msg->contains("reasoning_content") && (*msg)["reasoning_content"].is_string())
        reply.reasoning_content = (*msg)["reasoning_content"];
    }
  }
  if (c.contains("finish_reason") && c["finish_reason"].is_string()) reply.finish_reason = c["finish_reason"];
  return reply;
}

std::string server_error_message(const std::string& body) {
  try {
    const json j = json::parse(body);
    if (j.is_object() && j.contains("error")) {
      const json& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
      if (e.is_string()) return e.get<std::string>();
    }
  } catch (const std::exception&) {
  }
  return body.size() > 300 ? body.substr(0, 300) + "..." : body;
}

}  // namespace safekey::net
