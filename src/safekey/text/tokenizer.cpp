#include "safekey/text/tokenizer.h"

#include <algorithm>

#include "safekey/text/added_tokens.h"
#include "safekey/text/bpe.h"
#include "safekey/text/decoder.h"
#include "safekey/text/normalizer.h"
#include "safekey/text/pre_tokenizer.h"
#include "safekey/text/unicode.h"
#include "safekey/util/file.h"

namespace safekey::text {

struct PostProcessor {
  bool trim_offsets = false, trim_add_prefix_space = false;
  bool has_template = false;
  std::vector<int32_t> prefix, suffix;  // single-sequence template around $A
};

struct Tokenizer::Impl {
  std::string source;
  Normalizer normalizer;
  std::unique_ptr<PreTokenizer> pre;
  std::unique_ptr<Bpe> model;
  AddedVocabulary added;
  PostProcessor post;
  Decoder decoder;
  TokenizerConfig config;
  size_t vocab_size = 0;

  void encode_segment(std::string_view text, uint32_t seg_start, uint32_t seg_end, Encoding& enc,
                      std::vector<Piece>& pieces, std::vector<uint32_t>& lens) const;
};

namespace {

std::string token_content(const json& v, const std::string& where, const char* key) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object()) return json_get<std::string>(v, "content", cat(where, ": field '", key, "'"));
  fail(where, ": field '", key, "' must be a string, an AddedToken object or null");
}

void parse_post(const json& j, const std::string& where, PostProcessor& post) {
  if (j.is_null()) return;
  SK_CHECK(j.is_object(), where, ": expected an object");
  std::string type = json_get<std::string>(j, "type", where);
  if (type == "Sequence") {
    auto it = j.find("processors");
    SK_CHECK(it != j.end() && it->is_array(), where, ": Sequence needs an array 'processors'");
    for (size_t i = 0; i < it->size(); ++i) parse_post((*it)[i], cat(where, ".processors[", i, "]"), post);
  } else if (type == "ByteLevel") {
    post.trim_offsets = json_get_or<bool>(j, "trim_offsets", false, where);
    post.trim_add_prefix_space = json_get_or<bool>(j, "add_prefix_space", false, where);
  } else if (type == "TemplateProcessing") {
    post.has_template = true;
    post.prefix.clear();
    post.suffix.clear();
    const json& specials = j.contains("special_tokens") ? j["special_tokens"] : json::object();
    auto single = j.find("single");
    SK_CHECK(single != j.end() && single->is_array(), where, ": TemplateProcessing needs an array 'single'");
    bool seen_a = false;
    for (size_t i = 0; i < single->size(); ++i) {
      const json& piece = (*single)[i];
      std::string w = cat(where, ".single[", i, "]");
      if (piece.contains("Sequence")) {
        std::string id = json_get<std::string>(piece["Sequence"], "id", w);
        SK_CHECK(id == "A", w, ": a single-sequence template can only use $A, got $", id);
        seen_a = true;
      } else if (piece.contains("SpecialToken")) {
        std::string id = json_get<std::string>(piece["SpecialToken"], "id", w);
        SK_CHECK(specials.contains(id), w, ": special token '", id, "' is not in 'special_tokens'");
        const json& st = specials[id];
        auto ids = st.find("ids");
        SK_CHECK(ids != st.end() && ids->is_array(), where, ".special_tokens['", id, "']: missing array 'ids'");
        for (const json& v : *ids) {
          SK_CHECK(v.is_number_integer(), where, ".special_tokens['", id, "'].ids: expected integers");
          (seen_a ? post.suffix : post.prefix).push_back(v.get<int32_t>());
        }
      } else {
        fail(w, ": expected 'Sequence' or 'SpecialToken'");
      }
    }
    SK_CHECK(seen_a, where, ".single: the template has no $A");
  } else {
    fail(where, ": unsupported post_processor type '", type,
         "' (supported: TemplateProcessing, ByteLevel, Sequence)");
  }
}

}  // namespace

TokenizerConfig parse_tokenizer_config(const json& j, const std::string& where) {
  TokenizerConfig c;
  c.raw = j;
  if (j.is_null()) return c;
  SK_CHECK(j.is_object(), where, ": expected a JSON object");
  for (const char* key : {"bos_token", "eos_token", "pad_token", "unk_token"}) {
    std::string v = j.contains(key) ? token_content(j[key], where, key) : "";
    if (std::string(key) == "bos_token") c.bos_token = v;
    if (std::string(key) == "eos_token") c.eos_token = v;
    if (std::string(key) == "pad_token") c.pad_token = v;
    if (std::string(key) == "unk_token") c.unk_token = v;
  }
  if (j.contains("chat_template") && !j["chat_template"].is_null()) {
    const json& t = j["chat_template"];
    if (t.is_string()) {
      c.chat_template = t.get<std::string>();
    } else if (t.is_array()) {  // [{"name": "default", "template": "..."}, ...]
      for (const json& e : t) {
        if (e.is_object() && json_get_or<std::string>(e, "name", "", where) == "default")
          c.chat_template = json_get<std::string>(e, "template", where + ": chat_template");
      }
      if (!c.chat_template && !t.empty())
        c.chat_template = json_get<std::string>(t[0], "template", where + ": chat_template[0]");
    } else {
      fail(where, ": field 'chat_template' must be a string or a list");
    }
  }
  if (j.contains("add_bos_token") && j["add_bos_token"].is_boolean()) c.add_bos_token = j["add_bos_token"].get<bool>();
  if (j.contains("add_eos_token") && j["add_eos_token"].is_boolean()) c.add_eos_token = j["add_eos_token"].get<bool>();
  c.clean_up_tokenization_spaces = json_get_or<bool>(j, "clean_up_tokenization_spaces", false, where);
  c.tokenizer_class = json_get_or<std::string>(j, "tokenizer_class", "", where);
  return c;
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::string tj = path, dir;
  if (is_directory(path)) {
    dir = path;
    tj = path_join(path, "tokenizer.json");
    SK_CHECK(path_exists(tj), path, ": no tokenizer.json in this folder");
  } else {
    size_t slash = path.find_last_of('/');
    dir = slash == std::string::npos ? "." : path.substr(0, slash);
    std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    if (base == "tokenizer_config.json") {
      tj = path_join(dir, "tokenizer.json");
      SK_CHECK(path_exists(tj), path, ": no tokenizer.json next to this tokenizer_config.json");
    }
  }
  SK_CHECK(path_exists(tj), tj, ": file not found");
  json config;
  std::string cfg_path = path_join(dir, "tokenizer_config.json");
  if (path_exists(cfg_path)) config = read_json_file(cfg_path);
  Tokenizer t = from_json_text(read_file(tj), tj, config);
  if (!config.is_null()) t.impl_->config = parse_tokenizer_config(config, cfg_path);
  return t;
}

Tokenizer Tokenizer::from_json_text(const std::string& text, const std::string& where, const json& config) {
  json j = parse_json(text, where);
  SK_CHECK(j.is_object(), where, ": expected a JSON object");
  SK_CHECK(j.contains("model"), where, ": missing field 'model' (is this a tokenizer.json?)");
  auto impl = std::make_shared<Impl>();
  impl->source = where;
  impl->normalizer = Normalizer::from_json(j.value("normalizer", json()), where + ": normalizer");
  impl->pre = PreTokenizer::from_json(j.value("pre_tokenizer", json()), where + ": pre_tokenizer");
  SK_CHECK(impl->pre->byte_level(), where,
           ": pre_tokenizer has no ByteLevel step; only byte-level BPE tokenizers are supported");
  impl->model = Bpe::from_json(j["model"], where);
  impl->decoder = Decoder::from_json(j.value("decoder", json()), where + ": decoder");
  parse_post(j.value("post_processor", json()), where + ": post_processor", impl->post);
  impl->vocab_size = impl->model->vocab_size();
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    const json& at = j["added_tokens"];
    SK_CHECK(at.is_array(), where, ": field 'added_tokens' must be an array");
    for (size_t i = 0; i < at.size(); ++i) {
      std::string w = cat(where, ": added_tokens[", i, "]");
      AddedToken t;
      t.id = json_get<int32_t>(at[i], "id", w);
      SK_CHECK(t.id >= 0, w, ": negative id");
      t.content = json_get<std::string>(at[i], "content", w);
      SK_CHECK(!t.content.empty(), w, ": empty 'content'");
      utf8_check(t.content, w + ".content");
      t.special = json_get_or<bool>(at[i], "special", false, w);
      t.lstrip = json_get_or<bool>(at[i], "lstrip", false, w);
      t.rstrip = json_get_or<bool>(at[i], "rstrip", false, w);
      t.single_word = json_get_or<bool>(at[i], "single_word", false, w);
      t.normalized = json_get_or<bool>(at[i], "normalized", !t.special, w);
      NormalizedText nt;
      impl->added.add(t, impl->normalizer.normalize(t.content, nt) ? nt.text : t.content);
      impl->vocab_size = std::max(impl->vocab_size, static_cast<size_t>(t.id) + 1);
    }
  }
  for (int32_t id : impl->post.prefix) SK_CHECK(id >= 0, where, ": post_processor: negative special id");
  impl->config = parse_tokenizer_config(config, where + " (tokenizer_config)");
  Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

// ---- encode -----------------------------------------------------------------------------------

void Tokenizer::Impl::encode_segment(std::string_view text, uint32_t seg_start, uint32_t seg_end,
                                     Encoding& enc, std::vector<Piece>& pieces,
                                     std::vector<uint32_t>& lens) const {
  NormalizedText nt;
  std::string_view seg = text.substr(seg_start, seg_end - seg_start);
  // Unchanged text is used in place (identity alignment, nt.align empty).
  const std::string_view norm = normalizer.normalize(seg, nt) ? std::string_view(nt.text) : seg;
  auto p = reinterpret_cast<const unsigned char*>(norm.data());
  // Original byte range of normalized bytes [a, b).
  auto to_original = [&](uint32_t a, uint32_t b) -> std::pair<size_t, size_t> {
    if (!nt.identity()) return {seg_start + nt.align[a].first, seg_start + nt.align[b - 1].second};
    uint32_t s = a, last = b - 1;
    while (s > 0 && utf8_is_continuation(p[s])) --s;
    while (last > 0 && utf8_is_continuation(p[last])) --last;
    return {seg_start + s, seg_start + last + utf8_len(p[last])};
  };
  std::vector<AddedSplit> subs;
  added.split(norm, 0, static_cast<uint32_t>(norm.size()), /*normalized=*/true, subs);
  std::string word;
  for (const AddedSplit& sub : subs) {
    if (sub.id >= 0) {
      enc.ids.push_back(sub.id);
      enc.byte_offsets.push_back(to_original(sub.start, sub.end));
      continue;
    }
    pieces.clear();
    pieces.push_back({sub.start, sub.end, false});
    pre->split(norm, pieces);
    for (const Piece& pc : pieces) {
      if (pc.end <= pc.start) continue;
      std::string_view w(norm.data() + pc.start, pc.end - pc.start);
      if (pc.prefix_space) {
        word.assign(1, ' ');
        word.append(w);
        w = word;
      }
      size_t first = enc.ids.size();
      lens.clear();
      model->encode_word(w, enc.ids, &lens);
      uint32_t pos = 0;  // in word bytes
      for (size_t k = first; k < enc.ids.size(); ++k) {
        uint32_t a = pos, b = pos + lens[k - first];
        pos = b;
        auto map = [&](uint32_t x) { return pc.prefix_space ? pc.start + (x == 0 ? 0 : x - 1) : pc.start + x; };
        enc.byte_offsets.push_back(to_original(map(a), map(b - 1) + 1));
      }
    }
  }
}

Encoding Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  SK_CHECK(impl_, "Tokenizer: encode() on a tokenizer that was not loaded");
  const Impl& im = *impl_;
  utf8_check(text, "input text");
  SK_CHECK(text.size() < (1ull << 32) - 1, "input text: longer than 4 GiB");
  Encoding enc;
  enc.ids.reserve(text.size() / 3 + 8);
  enc.byte_offsets.reserve(text.size() / 3 + 8);
  std::vector<AddedSplit> splits;
  im.added.split(text, 0, static_cast<uint32_t>(text.size()), /*normalized=*/false, splits);
  std::vector<Piece> pieces;
  std::vector<uint32_t> lens;
  for (const AddedSplit& s : splits) {
    if (s.id >= 0) {
      enc.ids.push_back(s.id);
      enc.byte_offsets.push_back({s.start, s.end});
    } else {
      im.encode_segment(text, s.start, s.end, enc, pieces, lens);
    }
  }
  // ByteLevel post-processing: trim the spaces ('Ġ') at the ends of each token's offsets.
  if (im.post.trim_offsets) {
    for (size_t i = 0; i < enc.ids.size(); ++i) {
      std::string bytes;
      if (im.added.by_id(enc.ids[i]) || !im.model->token_bytes(enc.ids[i], bytes)) continue;
      size_t lead = 0, trail = 0;
      while (lead < bytes.size() && bytes[lead] == ' ') ++lead;
      while (trail < bytes.size() && bytes[bytes.size() - 1 - trail] == ' ') ++trail;
      auto& o = enc.byte_offsets[i];
      if (lead > 0) {
        if (im.post.trim_add_prefix_space && lead == 1 && o.first == 0) lead = 0;
        o.first = std::min(o.first + lead, o.second);
      }
      if (trail > 0 && o.second >= trail && trail < bytes.size()) o.second = std::max(o.second - trail, o.first);
    }
  }
  enc.added_by_template.assign(enc.ids.size(), 0);
  if (add_special_tokens && im.post.has_template) {
    enc.ids.insert(enc.ids.begin(), im.post.prefix.begin(), im.post.prefix.end());
    enc.byte_offsets.insert(enc.byte_offsets.begin(), im.post.prefix.size(), {0, 0});
    enc.added_by_template.insert(enc.added_by_template.begin(), im.post.prefix.size(), 1);
    enc.ids.insert(enc.ids.end(), im.post.suffix.begin(), im.post.suffix.end());
    enc.byte_offsets.insert(enc.byte_offsets.end(), im.post.suffix.size(), {0, 0});
    enc.added_by_template.insert(enc.added_by_template.end(), im.post.suffix.size(), 1);
  }
  // Byte offsets -> code point offsets, with a cursor that walks forward (and back if needed).
  enc.offsets.resize(enc.byte_offsets.size());
  size_t cb = 0, cc = 0;  // byte position, code point index
  auto p = reinterpret_cast<const unsigned char*>(text.data());
  auto to_char = [&](size_t b) {
    while (cb < b) {
      cb += utf8_len(p[cb]);
      ++cc;
    }
    while (cb > b) {
      do {
        --cb;
      } while (cb > 0 && utf8_is_continuation(p[cb]));
      --cc;
    }
    return cc;
  };
  for (size_t i = 0; i < enc.byte_offsets.size(); ++i) {
    if (enc.added_by_template[i]) {
      enc.offsets[i] = {0, 0};
      continue;
    }
    size_t s = to_char(enc.byte_offsets[i].first);
    size_t e = to_char(enc.byte_offsets[i].second);
    enc.offsets[i] = {s, e};
  }
  return enc;
}

std::vector<int32_t> Tokenizer::encode_ids(std::string_view text, bool add_special_tokens) const {
  return encode(text, add_special_tokens).ids;
}

// ---- decode -----------------------------------------------------------------------------------

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens, bool clean_up) const {
  SK_CHECK(impl_, "Tokenizer: decode() on a tokenizer that was not loaded");
  const Impl& im = *impl_;
  std::vector<const std::string*> toks;
  toks.reserve(ids.size());
  for (int32_t id : ids) {
    if (const AddedToken* t = im.added.by_id(id)) {
      if (skip_special_tokens && t->special) continue;
      toks.push_back(&t->content);
      continue;
    }
    const std::string& s = im.model->id_to_token(id);
    if (!s.empty()) toks.push_back(&s);
  }
  std::string out = im.decoder.decode(toks);
  if (clean_up) out = clean_up_tokenization(std::move(out));
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  return decode(ids, skip_special_tokens, impl_->config.clean_up_tokenization_spaces);
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::vector<int32_t> v;
  v.reserve(ids.size());
  for (int64_t id : ids) v.push_back(id < 0 || id > INT32_MAX ? -1 : static_cast<int32_t>(id));
  return decode(v, skip_special_tokens);
}

// ---- vocabulary -------------------------------------------------------------------------------

int32_t Tokenizer::token_to_id(const std::string& token) const {
  if (const AddedToken* t = impl_->added.by_content(token)) return t->id;
  return impl_->model->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* t = impl_->added.by_id(id)) return t->content;
  return impl_->model->id_to_token(id);
}

size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* t = impl_->added.by_id(id);
  return t && t->special;
}

int32_t Tokenizer::bos_id() const {
  if (!impl_->config.bos_token.empty()) return token_to_id(impl_->config.bos_token);
  return impl_->post.prefix.empty() ? -1 : impl_->post.prefix.front();
}
int32_t Tokenizer::eos_id() const {
  return impl_->config.eos_token.empty() ? -1 : token_to_id(impl_->config.eos_token);
}
int32_t Tokenizer::pad_id() const {
  return impl_->config.pad_token.empty() ? -1 : token_to_id(impl_->config.pad_token);
}
const std::vector<int32_t>& Tokenizer::template_prefix() const { return impl_->post.prefix; }
const std::vector<int32_t>& Tokenizer::template_suffix() const { return impl_->post.suffix; }
const TokenizerConfig& Tokenizer::config() const { return impl_->config; }
const std::string& Tokenizer::source() const { return impl_->source; }
void Tokenizer::set_fast_pre_tokenizer(bool on) { impl_->pre->set_fast_path(on); }

}  // namespace safekey::text
