#include "safekey/util/json.h"

#include "safekey/util/file.h"

namespace safekey {

json parse_json(const std::string& text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // Turn the byte offset into line:column for the message.
    size_t byte = e.byte > 0 ? e.byte - 1 : 0;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    fail(where, ":", line, ":", col, ": invalid JSON (", e.what(), ")");
  } catch (const json::out_of_range& e) {  // a number beyond double's range (1e400): no position
    fail(where, ": invalid JSON (", e.what(), ")");
  }
}

json read_json_file(const std::string& path) { return parse_json(read_file(path), path); }

}  // namespace safekey
