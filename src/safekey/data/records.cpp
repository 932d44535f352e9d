// Record loading and validation; see records.h and docs/data.md.
#include "safekey/data/records.h"

#include <algorithm>
#include <functional>
#include <map>

#include "safekey/data/response.h"
#include "safekey/util/file.h"

namespace safekey::data {

std::string_view Record::understanding() const {
  SK_CHECK(has_spans, origin, ": record has no spans");
  return std::string_view(response).substr(0, static_cast<size_t>(summary_end_byte));
}

std::string_view Record::key_sentence() const {
  SK_CHECK(has_spans, origin, ": record has no spans");
  return std::string_view(response).substr(
      static_cast<size_t>(summary_end_byte),
      static_cast<size_t>(next_sentence_end_byte - summary_end_byte));
}

std::string Problem::to_string() const {
  std::string s = cat(file, ":", line);
  if (column > 0) s += cat(":", column);
  if (!field.empty()) s += cat(":", field);
  s += cat(": ", message);
  if (index >= 0) s += cat(" (record ", index, ")");
  return s;
}

namespace {

using Add = std::function<void(const std::string&, const std::string&)>;

// Reads an optional string field; reports a wrong type. Returns false when absent or bad.
bool get_string(const ordered_json& obj, const char* key, std::string& out, const Add& add) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return false;
  if (!it->is_string()) {
    add(key, cat("expected a string, got ", it->type_name()));
    return false;
  }
  out = it->get<std::string>();
  return true;
}

// An offset field: absent -> -2, bad type -> -1 (reported), else the value.
int64_t get_offset(const ordered_json& obj, const char* key, const Add& add) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return -2;
  const bool negative = it->is_number_integer() && !it->is_number_unsigned() && it->get<int64_t>() < 0;
  if (!it->is_number_integer() || negative) {
    add(key, cat("expected a non-negative integer, got ", it->type_name(), " ", it->dump()));
    return -1;
  }
  if (it->is_number_unsigned() && it->get<uint64_t>() > (uint64_t{1} << 62)) {
    add(key, cat(it->dump(), " is out of range"));
    return -1;
  }
  return it->get<int64_t>();
}

void parse_messages(const ordered_json& obj, Record& out, bool& have_q, bool& have_r, const Add& add) {
  const auto& msgs = obj["messages"];
  if (obj.contains("question") || obj.contains("response"))
    add("messages", "give either 'messages' or 'question'/'response', not both");
  if (!msgs.is_array()) {
    add("messages", cat("expected an array of {role, content} objects, got ", msgs.type_name()));
    return;
  }
  std::vector<std::string> roles;
  for (size_t i = 0; i < msgs.size(); ++i) {
    const std::string f = cat("messages[", i, "]");
    const auto& m = msgs[i];
    if (!m.is_object()) {
      add(f, cat("expected an object with 'role' and 'content', got ", m.type_name()));
      return;
    }
    std::string role, content;
    const Add sub = [&](const std::string& k, const std::string& msg) { add(f + "." + k, msg); };
    const bool has_role = get_string(m, "role", role, sub);
    const bool has_content = get_string(m, "content", content, sub);
    if (!has_role && !m.contains("role")) sub("role", "missing");
    if (!has_content && !m.contains("content")) sub("content", "missing");
    if (!has_role || !has_content) return;
    roles.push_back(role);
    if (i == 0 && role == "user") {
      out.question = content;
      have_q = true;
    } else if (i == 1 && role == "assistant") {
      out.response = content;
      have_r = true;
    }
  }
  if (roles.size() != 2 || roles[0] != "user" || roles[1] != "assistant") {
    std::string got;
    for (const auto& r : roles) got += (got.empty() ? "" : ", ") + r;
    add("messages", cat("expected exactly [user, assistant] turns, got [", got, "]"));
    have_q = have_r = false;
  }
}

void parse_label(const ordered_json& obj, const LoadOptions& options, Record& out, const Add& add) {
  const bool has_source = get_string(obj, "source", out.source, add);
  auto it = obj.find("unsafe");
  if (it != obj.end() && !it->is_null()) {
    if (it->is_boolean()) {
      out.unsafe = it->get<bool>() ? 1 : 0;
    } else if (it->is_number_integer() && (it->get<int64_t>() == 0 || it->get<int64_t>() == 1)) {
      out.unsafe = static_cast<int>(it->get<int64_t>());
    } else {
      add("unsafe", cat("expected true/false or 0/1, got ", it->dump()));
    }
    return;
  }
  if (!has_source) {
    if (!obj.contains("source") || obj["source"].is_null())
      add("source", "missing (the safety label comes from 'source' when there is no 'unsafe' field)");
    return;
  }
  const auto& b = options.benign_sources;
  out.unsafe = std::find(b.begin(), b.end(), out.source) != b.end() ? 0 : 1;
}

void parse_meta(const ordered_json& obj, Record& out, const Add& add) {
  if (auto it = obj.find("category"); it != obj.end() && !it->is_null()) {
    if (it->is_string()) {
      out.category = {it->get<std::string>()};
    } else if (it->is_array() &&
               std::all_of(it->begin(), it->end(), [](const ordered_json& c) { return c.is_string(); })) {
      for (const auto& c : *it) out.category.push_back(c.get<std::string>());
    } else {
      add("category", cat("expected a string or a list of strings, got ", it->dump()));
    }
  }
  if (auto it = obj.find("id"); it != obj.end() && !it->is_null()) {
    if (it->is_string())
      out.id = it->get<std::string>();
    else if (it->is_number_integer())
      out.id = it->dump();
    else
      add("id", cat("expected a string or an integer, got ", it->type_name()));
  }
}

// Checks the span offsets against the normalised response and fills both kinds of offsets.
void parse_spans(const ordered_json& obj, const LoadOptions& options, bool response_ok, Record& out,
                 const Add& add) {
  const char* kChar[2] = {"summary_end_idx", "next_sentence_end_idx"};
  const char* kByte[2] = {"summary_end_byte", "next_sentence_end_byte"};
  auto present = [&](const char* k) { return obj.contains(k) && !obj[k].is_null(); };
  const bool any_char = present(kChar[0]) || present(kChar[1]);
  const bool any_byte = present(kByte[0]) || present(kByte[1]);
  if (any_char && any_byte) {
    add(kByte[0], "give span offsets either in characters (*_idx) or in bytes (*_byte), not both");
    return;
  }
  if (!any_char && !any_byte) {
    if (options.require_spans) {
      add(kChar[0], "missing (span offsets are required for training; `safekey annotate` adds them)");
      add(kChar[1], "missing");
    }
    return;
  }
  const bool bytes = any_byte;
  const char* const* names = bytes ? kByte : kChar;
  int64_t v[2];
  bool ok = true;
  for (int i = 0; i < 2; ++i) {
    v[i] = get_offset(obj, names[i], add);
    if (v[i] == -2) add(names[i], cat("missing (", names[1 - i], " is given)"));
    ok = ok && v[i] >= 0;
  }
  if (!ok || !response_ok) return;
  const std::string_view r = out.response;
  const int64_t len = static_cast<int64_t>(bytes ? r.size() : codepoint_count(r));
  const char* unit = bytes ? "bytes" : "characters";
  for (int i = 0; i < 2; ++i) {
    if (v[i] > len) {
      add(names[i], cat(v[i], " is beyond the end of the normalised response (", len, " ", unit, ")"));
      ok = false;
    } else if (bytes && !is_utf8_boundary(r, static_cast<size_t>(v[i]))) {
      add(names[i], cat("byte ", v[i], " is inside a UTF-8 character (not on a character boundary)"));
      ok = false;
    }
  }
  if (!ok) return;
  const auto think = static_cast<int64_t>(kThinkOpen.size());
  if (v[0] <= think)
    add(names[0], cat("U is empty: U = response[:", v[0], "] must reach past the leading \"<think>\\n\" (",
                      think, " ", unit, ")"));
  if (v[1] < v[0])
    add(names[1], cat(v[1], " is before ", names[0], " ", v[0], " (offsets must be ordered)"));
  else if (v[1] == v[0])
    add(names[1], cat("K is empty (equals ", names[0], " ", v[0], ")"));
  if (v[0] <= think || v[1] <= v[0]) return;
  out.has_spans = true;
  if (bytes) {
    out.summary_end_byte = v[0];
    out.next_sentence_end_byte = v[1];
    out.summary_end_idx = static_cast<int64_t>(codepoint_of_byte(r, static_cast<size_t>(v[0])));
    out.next_sentence_end_idx = static_cast<int64_t>(codepoint_of_byte(r, static_cast<size_t>(v[1])));
  } else {
    out.summary_end_idx = v[0];
    out.next_sentence_end_idx = v[1];
    out.summary_end_byte = static_cast<int64_t>(byte_of_codepoint(r, static_cast<size_t>(v[0])));
    out.next_sentence_end_byte = static_cast<int64_t>(byte_of_codepoint(r, static_cast<size_t>(v[1])));
  }
}

}  // namespace

void parse_record(const ordered_json& obj, const Problem& where, const LoadOptions& options,
                  Record& out, std::vector<Problem>& problems) {
  const Add add = [&](const std::string& field, const std::string& message) {
    Problem p = where;
    p.field = field;
    p.message = message;
    problems.push_back(std::move(p));
  };
  const size_t before = problems.size();
  out = Record{};
  out.origin = cat(where.file, ":", where.line);
  out.index = where.index;
  if (!obj.is_object()) {
    add("", cat("expected a JSON object, got ", obj.type_name()));
    return;
  }
  out.raw = obj;
  bool have_q = false, have_r = false;
  std::string raw_response;
  if (obj.contains("messages")) {
    out.chat_style = true;
    parse_messages(obj, out, have_q, have_r, add);
    raw_response = out.response;
  } else {
    have_q = get_string(obj, "question", out.question, add);
    have_r = get_string(obj, "response", raw_response, add);
    if (!obj.contains("question")) add("question", "missing");
    if (!obj.contains("response")) add("response", "missing");
  }
  const std::string q_field = out.chat_style ? "messages[0].content" : "question";
  const std::string r_field = out.chat_style ? "messages[1].content" : "response";
  if (have_q && python_strip(out.question).empty()) add(q_field, "is empty");
  bool response_ok = false;
  if (have_r) {
    NormalizedResponse n = normalize_response_parts(raw_response);
    out.response = std::move(n.text);
    if (!n.has_think)
      add(r_field, "has no <think>...</think> block (the reasoning must come first, SPEC section 2)");
    else
      response_ok = true;
  }
  parse_label(obj, options, out, add);
  parse_meta(obj, out, add);
  if (auto it = obj.find("prefill"); it != obj.end() && !it->is_null()) {
    if (!it->is_string()) {
      add("prefill", cat("must be a string, got ", it->type_name()));
    } else {
      out.prefill = it->get<std::string>();
      if (response_ok && out.response.compare(kThinkOpen.size(), out.prefill.size(), out.prefill) != 0)
        add("prefill", "the response's thinking does not start with it (the prefill is the start of the reply)");
    }
  }
  parse_spans(obj, options, response_ok, out, add);
  if (problems.size() != before) out.has_spans = false;
}

json skipped_list_json(const std::string& path, const std::vector<Problem>& problems, int64_t skipped) {
  std::map<int64_t, json> by_index;
  for (const auto& p : problems) {
    json& rec = by_index[p.index];
    if (rec.is_null()) rec = {{"origin", cat(p.file, ":", p.line)}, {"index", p.index}, {"problems", json::array()}};
    json e = {{"line", p.line}, {"field", p.field}, {"message", p.message}};
    if (p.column > 0) e["column"] = p.column;
    rec["problems"].push_back(std::move(e));
  }
  json out = {{"file", path}, {"skipped", skipped}, {"records", json::array()}};
  for (auto& [i, r] : by_index) out["records"].push_back(std::move(r));
  return out;
}

}  // namespace safekey::data
