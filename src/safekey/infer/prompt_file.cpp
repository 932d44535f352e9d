#include "safekey/infer/prompt_file.h"

#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"

namespace safekey::infer {

std::string text_location(const std::string& path, const std::string& text, size_t offset) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++col;  // columns count characters, not bytes
    }
  }
  return cat(path, ":", line, ":", col);
}

namespace {

// Parses `text[begin, end)` as one JSON value; errors point into the file.
json parse_at(const std::string& path, const std::string& text, size_t begin, size_t end) {
  try {
    return json::parse(text.begin() + static_cast<std::ptrdiff_t>(begin),
                       text.begin() + static_cast<std::ptrdiff_t>(end));
  } catch (const json::parse_error& e) {
    size_t at = begin + (e.byte > 0 ? e.byte - 1 : 0);
    std::string msg = e.what();
    if (auto p = msg.find("syntax error"); p != std::string::npos) msg = msg.substr(p);
    fail(text_location(path, text, at), ": invalid JSON: ", msg);
  } catch (const json::out_of_range& e) {  // a number beyond double's range (1e400): no position
    fail(text_location(path, text, begin), ": invalid JSON: ", e.what());
  }
}

std::string str_field(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (it->is_number_integer() && std::string(key) == "id") return std::to_string(it->get<int64_t>());
  SK_CHECK(it->is_string(), where, ": field '", key, "' must be a string (got ", it->type_name(), ")");
  return it->get<std::string>();
}

PromptItem item_from(const json& v, const std::string& where, size_t index) {
  PromptItem it;
  it.source = where;
  it.id = std::to_string(index);
  if (v.is_string()) {
    it.instruction = v.get<std::string>();
    SK_CHECK(!it.instruction.empty(), where, ": empty prompt");
    it.messages = {{"user", it.instruction}};
    return it;
  }
  SK_CHECK(v.is_object(), where, ": expected a string or an object (got ", v.type_name(), ")");
  if (auto id = str_field(v, "id", where); !id.empty()) it.id = id;
  it.target = str_field(v, "target", where);
  if (it.target.empty()) it.target = str_field(v, "prefill", where);
  it.category = str_field(v, "category", where);
  it.label = str_field(v, "label", where);
  it.objective = str_field(v, "objective", where);
  if (auto m = v.find("messages"); m != v.end() && !m->is_null()) {
    SK_CHECK(m->is_array() && !m->empty(), where, ": field 'messages' must be a non-empty list");
    for (size_t i = 0; i < m->size(); ++i) {
      const json& msg = (*m)[i];
      std::string w = cat(where, ": messages[", i, "]");
      SK_CHECK(msg.is_object(), w, " must be an object {role, content}");
      std::string role = json_get<std::string>(msg, "role", w);
      SK_CHECK(role == "system" || role == "user" || role == "assistant", w,
               ": field 'role' must be system, user or assistant (got '", role, "')");
      it.messages.push_back({role, json_get<std::string>(msg, "content", w)});
    }
    SK_CHECK(it.messages.back().role == "user", where, ": 'messages' must end on a user turn");
    it.instruction = it.objective.empty() ? it.messages.back().content : it.objective;
    if (auto p = str_field(v, "instruction", where); !p.empty()) it.instruction = p;
    return it;
  }
  std::string prompt = str_field(v, "prompt", where);
  if (prompt.empty()) prompt = str_field(v, "instruction", where);
  SK_CHECK(!prompt.empty(), where, ": needs a non-empty 'prompt', 'instruction' or 'messages'");
  it.instruction = prompt;
  it.messages = {{"user", prompt}};
  return it;
}

}  // namespace

std::vector<PromptItem> read_prompt_file(const std::string& path) {
  std::string text = read_file(path);
  std::vector<PromptItem> out;
  size_t first = text.find_first_not_of(" \t\r\n");
  SK_CHECK(first != std::string::npos, path, ": the prompt file is empty");
  bool jsonl = path.size() >= 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
  if (!jsonl && text[first] == '[') {
    json arr = parse_at(path, text, 0, text.size());
    for (size_t i = 0; i < arr.size(); ++i)
      out.push_back(item_from(arr[i], cat(path, ":[", i, "]"), i));
  } else {
    size_t line_no = 0, pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      size_t end = nl == std::string::npos ? text.size() : nl;
      ++line_no;
      if (text.find_first_not_of(" \t\r", pos) < end) {
        json v = parse_at(path, text, pos, end);
        out.push_back(item_from(v, cat(path, ":", line_no), out.size()));
      }
      pos = end + 1;
    }
  }
  SK_CHECK(!out.empty(), path, ": no prompts");
  return out;
}

}  // namespace safekey::infer
