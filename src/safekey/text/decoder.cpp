#include "safekey/text/decoder.h"

#include "safekey/text/unicode.h"

namespace safekey::text {

namespace {
void parse_into(const json& j, const std::string& where, Decoder& d, bool& byte_level) {
  SK_CHECK(j.is_object(), where, ": expected an object");
  std::string type = json_get<std::string>(j, "type", where);
  if (type == "ByteLevel") {
    byte_level = true;
  } else if (type == "Sequence") {
    auto it = j.find("decoders");
    SK_CHECK(it != j.end() && it->is_array(), where, ": Sequence needs an array 'decoders'");
    for (size_t i = 0; i < it->size(); ++i) parse_into((*it)[i], cat(where, ".decoders[", i, "]"), d, byte_level);
  } else {
    fail(where, ": unsupported decoder type '", type, "' (supported: ByteLevel, Sequence)");
  }
}
}  // namespace

Decoder Decoder::from_json(const json& j, const std::string& where) {
  Decoder d;
  if (!j.is_null()) parse_into(j, where, d, d.byte_level_);
  return d;
}

std::string Decoder::decode(const std::vector<const std::string*>& tokens) const {
  std::string bytes;
  if (!byte_level_) {
    for (const std::string* t : tokens) bytes += *t;
    return bytes;
  }
  for (const std::string* t : tokens) {
    size_t before = bytes.size();
    if (!byte_level_to_bytes(*t, bytes)) {
      bytes.resize(before);
      bytes += *t;
    }
  }
  return utf8_lossy(bytes);
}

std::string clean_up_tokenization(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (auto [from, to] : kRules) {
    std::string out;
    std::string_view f(from);
    size_t pos = 0;
    while (true) {
      size_t k = s.find(f, pos);
      if (k == std::string::npos) break;
      out.append(s, pos, k - pos);
      out += to;
      pos = k + f.size();
    }
    out.append(s, pos, std::string::npos);
    s.swap(out);
  }
  return s;
}

}  // namespace safekey::text
