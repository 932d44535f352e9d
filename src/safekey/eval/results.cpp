#include "safekey/eval/results.h"

#include <sstream>

#include "safekey/eval/benchmarks.h"
#include "safekey/util/file.h"

namespace safekey::eval {

Part part_from_name(const std::string& s) {
  if (s == "response") return Part::kResponse;
  if (s == "answer") return Part::kAnswer;
  if (s == "think") return Part::kThink;
  fail("--part: unknown part '", s, "' (expected response, answer or think)");
}

const char* part_name(Part p) {
  switch (p) {
    case Part::kResponse: return "response";
    case Part::kAnswer: return "answer";
    case Part::kThink: return "think";
  }
  return "?";
}

namespace {
std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}
bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}
}  // namespace

std::string extract_part(const std::string& text, Part p) {
  static const std::string close = "</think>", open = "<think>";
  switch (p) {
    case Part::kResponse:
      return trim(text);
    case Part::kAnswer: {
      size_t c = text.rfind(close);
      return trim(c == std::string::npos ? text : text.substr(c + close.size()));
    }
    case Part::kThink: {
      size_t c = text.find(close);
      std::string t = trim(c == std::string::npos ? text : text.substr(0, c));
      if (t.rfind(open, 0) == 0) t = trim(t.substr(open.size()));
      return t;
    }
  }
  return text;
}

json read_results(const std::string& path, bool need_instruction) {
  json doc;
  if (ends_with(path, ".jsonl")) {
    doc = {{"meta_info", json::object()}, {"data", json::array()}};
    std::istringstream in(read_file(path));
    std::string line;
    size_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      json j = parse_json_located(line, path, n);
      if (j.is_object() && j.contains("meta_info") && !j.contains("instruction")) {
        doc["meta_info"] = j["meta_info"];
        continue;
      }
      doc["data"].push_back(std::move(j));
    }
  } else {
    doc = parse_json_located(read_file(path), path);
    SK_CHECK(doc.is_object() && doc.contains("data") && doc["data"].is_array(), path,
             ": expected {\"meta_info\": {...}, \"data\": [...]}");
    if (!doc.contains("meta_info") || !doc["meta_info"].is_object()) doc["meta_info"] = json::object();
  }
  json& data = doc["data"];
  for (size_t i = 0; i < data.size(); ++i) {
    std::string w = cat(path, ": data[", i, "]");
    json& it = data[i];
    SK_CHECK(it.is_object(), w, ": expected an object");
    SK_CHECK((!need_instruction && !it.contains("instruction")) ||
                 (it.contains("instruction") && it["instruction"].is_string()),
             w,
             ": field 'instruction' missing or not a string");
    SK_CHECK(it.contains("response"), w, ": missing field 'response'");
    if (it["response"].is_string()) it["response"] = json::array({it["response"]});
    SK_CHECK(it["response"].is_array(), w, ": field 'response' must be a list of strings");
    for (size_t k = 0; k < it["response"].size(); ++k)
      SK_CHECK(it["response"][k].is_string(), w, ": response[", k, "] is not a string");
  }
  return doc;
}

void write_results(const std::string& path, const json& doc) {
  if (ends_with(path, ".jsonl")) {
    std::string out;
    if (doc.contains("meta_info") && !doc["meta_info"].empty())
      out += json{{"meta_info", doc["meta_info"]}}.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    for (const auto& it : doc["data"]) out += it.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    write_file_atomic(path, out);
  } else {
    write_file_atomic(path, doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  }
}

std::string judge_request_of(const json& item) {
  if (item.contains("objective") && item["objective"].is_string() &&
      !item["objective"].get<std::string>().empty())
    return item["objective"];
  return item.value("instruction", "");
}

}  // namespace safekey::eval
