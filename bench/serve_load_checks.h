// Helpers of the load client (bench/serve_load.h): RSS from /proc, percentiles, the per-client
// random numbers, and the checks of a /metrics text, a JSON error body and an SSE stream.
#pragma once
#include <sys/types.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::load {

inline double mib_from_status(pid_t pid, const char* field) {  // VmRSS / VmHWM in MiB, or -1
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field, 0) == 0)
      return std::atof(line.c_str() + std::string(field).size() + 1) / 1024.0;
  return -1;
}

inline double percentile(std::vector<double> v, double p) {  // nearest rank; 0 for no values
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::max(0.0, std::ceil(p / 100.0 * v.size()) - 1));
  return v[std::min(i, v.size() - 1)];
}

inline uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Parsed GET /metrics: name -> value (lines "name value"; comments skipped).
inline std::map<std::string, double> parse_metrics(const std::string& text) {
  std::map<std::string, double> m;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.rfind(' ');
    if (sp != std::string::npos) m[line.substr(0, sp)] = std::atof(line.c_str() + sp + 1);
  }
  return m;
}

// A JSON error body as docs/server.md specifies: {"error": {"message": string, "type", "code",
// ...}}.
inline bool is_json_error(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  return !j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_object() &&
         j["error"].contains("message") && j["error"]["message"].is_string() &&
         j["error"].contains("type");
}

// Checks a whole SSE body; returns "" or what is wrong. *tokens: usage.completion_tokens.
inline std::string check_stream(const std::string& body, bool chat, int64_t* tokens) {
  size_t pos = 0;
  bool done = false, finished = false;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) return "unterminated event";
    std::string ev = body.substr(pos, end - pos);
    pos = end + 2;
    if (done) return "event after [DONE]";
    if (ev.rfind("data: ", 0) != 0) return "event without 'data: '";
    std::string data = ev.substr(6);
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    json j = json::parse(data, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return "event is not JSON";
    if (j.contains("error")) return "error event: " + j["error"].value("message", std::string());
    if (j.value("object", "") != (chat ? "chat.completion.chunk" : "text_completion"))
      return "chunk object";
    if (j.contains("usage") && j["usage"].is_object())
      *tokens = j["usage"].value("completion_tokens", int64_t{0});
    if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty() &&
        j["choices"][0].contains("finish_reason") && j["choices"][0]["finish_reason"].is_string())
      finished = true;
  }
  if (!done) return "no data: [DONE]";
  if (!finished) return "no finish_reason chunk";
  return "";
}

// True when an SSE event carries generated text (delta content / reasoning_content, or text).
inline bool event_has_text(const std::string& ev) {
  if (ev.rfind("data: {", 0) != 0) return false;
  json j = json::parse(ev.substr(6), nullptr, false);
  if (j.is_discarded() || !j.contains("choices") || !j["choices"].is_array() ||
      j["choices"].empty())
    return false;
  const json& c = j["choices"][0];
  auto nonempty = [](const json& o, const char* k) {
    return o.contains(k) && o[k].is_string() && !o[k].get<std::string>().empty();
  };
  if (c.contains("delta"))
    return nonempty(c["delta"], "content") || nonempty(c["delta"], "reasoning_content");
  return nonempty(c, "text");
}

}  // namespace safekey::load
