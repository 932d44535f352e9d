#include "safekey/infer/text_stream.h"

#include <algorithm>

namespace safekey::infer {

namespace {

// U+FFFD, what a lossy decoder produces for an incomplete trailing byte sequence.
bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && static_cast<unsigned char>(s[s.size() - 3]) == 0xEF &&
         static_cast<unsigned char>(s[s.size() - 2]) == 0xBF &&
         static_cast<unsigned char>(s[s.size() - 1]) == 0xBD;
}

}  // namespace

size_t utf8_complete_prefix(const std::string& s) {
  size_t n = s.size();
  // Walk back over at most 3 continuation bytes to the last lead byte.
  size_t i = n;
  int cont = 0;
  while (i > 0 && cont < 4 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) {
    --i;
    ++cont;
  }
  if (i == 0) return cont == 0 ? 0 : n;  // only continuation bytes: not our problem here
  unsigned char lead = static_cast<unsigned char>(s[i - 1]);
  int need = lead < 0x80 ? 0 : (lead >> 5) == 0x6 ? 1 : (lead >> 4) == 0xE ? 2 : (lead >> 3) == 0x1E ? 3 : 0;
  if (lead >= 0x80 && cont < need) return i - 1;  // the last character is incomplete
  return n;
}

TextStream::TextStream(DecodeFn decode, std::vector<std::string> stop)
    : decode_(std::move(decode)), stop_(std::move(stop)) {
  for (const auto& s : stop_) max_stop_ = std::max(max_stop_, s.size());
}

bool TextStream::check_stop(size_t search_from) {
  size_t best = std::string::npos;
  for (const auto& s : stop_) {
    size_t from = search_from > s.size() ? search_from - s.size() + 1 : 0;
    size_t p = text_.find(s, from);
    if (p != std::string::npos && p < best) {
      best = p;
      matched_ = s;
    }
  }
  if (best == std::string::npos) return false;
  text_.resize(best);
  stopped_ = true;
  return true;
}

bool TextStream::push(int64_t token) {
  if (stopped_ || finished_) return stopped_;
  ids_.push_back(token);
  std::vector<int64_t> confirmed(ids_.begin() + prefix_, ids_.begin() + read_);
  std::vector<int64_t> window(ids_.begin() + prefix_, ids_.end());
  std::string prefix_text = confirmed.empty() ? std::string() : decode_(confirmed);
  std::string new_text = decode_(window);
  if (new_text.size() > prefix_text.size() && !ends_with_replacement(new_text) &&
      new_text.compare(0, prefix_text.size(), prefix_text) == 0) {
    size_t before = text_.size();
    text_ += new_text.substr(prefix_text.size());
    prefix_ = read_;
    read_ = ids_.size();
    if (!stop_.empty()) return check_stop(before);
  } else if (new_text.size() > prefix_text.size() && !ends_with_replacement(new_text)) {
    // The window re-decoded its head differently; keep the confirmed text and restart the
    // window at the current end.
    size_t before = text_.size();
    text_ += new_text.substr(std::min(prefix_text.size(), new_text.size()));
    prefix_ = read_ = ids_.size();
    if (!stop_.empty()) return check_stop(before);
  }
  return false;
}

void TextStream::finish() {
  if (finished_) return;
  finished_ = true;
  if (stopped_ || read_ == ids_.size()) return;
  std::vector<int64_t> confirmed(ids_.begin() + prefix_, ids_.begin() + read_);
  std::vector<int64_t> window(ids_.begin() + prefix_, ids_.end());
  std::string prefix_text = confirmed.empty() ? std::string() : decode_(confirmed);
  std::string new_text = decode_(window);
  if (new_text.size() > prefix_text.size()) {
    size_t before = text_.size();
    text_ += new_text.substr(prefix_text.size());
    if (!stop_.empty()) check_stop(before);
  }
  read_ = ids_.size();
}

std::string TextStream::take_ready() {
  size_t ready = text_.size();
  if (!finished_ && !stopped_ && max_stop_ > 1) {
    // Hold back a tail that could be the start of a stop string.
    size_t hold = 0;
    for (const auto& s : stop_) {
      for (size_t k = std::min(s.size() - 1, text_.size()); k > hold; --k) {
        if (text_.compare(text_.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
      }
    }
    ready = text_.size() - hold;
  }
  ready = std::max(emitted_, std::min(ready, utf8_complete_prefix(text_.substr(0, ready))));
  std::string out = text_.substr(emitted_, ready - emitted_);
  emitted_ = ready;
  return out;
}

}  // namespace safekey::infer
