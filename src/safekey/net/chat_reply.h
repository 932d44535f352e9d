// Reading an OpenAI-compatible server's reply (the chat client's parsing, chat_client.h), apart from
// the HTTP transport so that it can be tested and fuzzed on its own (tests/fuzz/fuzz_replies.cpp):
// a reply comes from another machine and may be anything.
#pragma once
#include <string>

#include "safekey/util/json.h"

namespace safekey::net {

struct ChatReply {
  std::string content;            // choices[0].message.content (or choices[0].text for completions)
  std::string reasoning_content;  // choices[0].message.reasoning_content ("" when absent)
  std::string finish_reason;
  int attempts = 1;               // HTTP requests it took (1 = no retry)
  json raw;                       // the whole response body
};

// A 200 reply's body: chat completions (`completions` false) read choices[0].message, completions
// choices[0].text. Throws Error naming `where` and what is missing for anything else.
ChatReply parse_chat_reply(const std::string& body, bool completions, const std::string& where);

// The server's own error message from an OpenAI-style {"error": {"message": ...}} (or {"error":
// "..."}) body; else the body, cut at 300 bytes. Never throws.
std::string server_error_message(const std::string& body);

}  // namespace safekey::net
