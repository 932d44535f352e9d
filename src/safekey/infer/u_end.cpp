#include "safekey/infer/u_end.h"

#include <algorithm>

#include "safekey/data/response.h"
#include "safekey/data/sentences.h"
#include "safekey/infer/prompt.h"
#include "safekey/util/error.h"

namespace safekey::infer {

size_t first_sentence_end(std::string_view text, bool* at_end) {
  *at_end = false;
  static constexpr std::string_view kOpen = "<think>", kClose = "</think>";
  size_t start = 0;
  auto skip_space = [&] {
    while (start < text.size()) {
      size_t j = start;
      if (!data::is_python_space(data::utf8_next(text, j))) break;
      start = j;
    }
  };
  skip_space();
  if (text.substr(start, kOpen.size()) == kOpen) {
    start += kOpen.size();
    skip_space();
  }
  const size_t stop = std::min(text.size(), text.find(kClose, start));
  for (size_t i = start + 1; i <= stop; ++i) {
    const char c = text[i - 1];
    if (c != '.' && c != '?') continue;
    if (i >= start + 3 && text.substr(i - 3, 3) == "...") continue;
    bool followed = false;
    if (i < text.size()) {
      size_t j = i;
      followed = data::is_python_space(data::utf8_next(text, j));
      if (!followed) continue;
    }
    if (data::ends_in_abbreviation(text.substr(start, i - start))) continue;
    *at_end = !followed;
    return i;
  }
  return std::string::npos;
}

UFinder::UFinder(const text::Tokenizer& tok, int64_t max_u_tokens) : tok_(&tok), max_u_tokens_(max_u_tokens) {
  SK_CHECK(max_u_tokens >= 1, "U search: max_u_tokens must be >= 1, not ", max_u_tokens);
}

std::optional<UFinder::Candidate> UFinder::push(int64_t token, const torch::Tensor& hidden) {
  if (done_) return std::nullopt;
  ids_.push_back(token);
  hidden_.push_back(hidden.detach().to(torch::kFloat32).clone());
  text_ = decode_ids(*tok_, ids_, true);
  ends_.push_back(text_.size());
  bool at_end = false;
  const size_t e = first_sentence_end(text_, &at_end);
  if (e == std::string::npos) {
    pending_end_ = std::string::npos;
    const bool closed = text_.find("</think>") != std::string::npos;
    if (closed || static_cast<int64_t>(ids_.size()) >= max_u_tokens_) done_ = true;
    return std::nullopt;
  }
  if (e == pending_end_) {  // the candidate of one token ago: did the sentence end?
    if (!at_end) done_ = true;
    return std::nullopt;
  }
  int64_t j = 0;  // tokens before the first one that reaches past the sentence's last character
  while (j < static_cast<int64_t>(ends_.size()) && ends_[static_cast<size_t>(j)] <= e) ++j;
  if (j == 0) {  // the first token already crosses the boundary: no U of its own
    done_ = true;
    return std::nullopt;
  }
  if (at_end) {
    pending_end_ = e;
  } else {
    done_ = true;
  }
  return Candidate{j, at_end};
}

void UFinder::release() {
  std::vector<torch::Tensor>().swap(hidden_);
  std::vector<int64_t>().swap(ids_);
  std::vector<size_t>().swap(ends_);
  std::string().swap(text_);
}

torch::Tensor UFinder::hidden_sum(int64_t tokens) const {
  SK_CHECK(tokens >= 1 && tokens <= static_cast<int64_t>(hidden_.size()), "U search: ", tokens,
           " tokens asked, ", hidden_.size(), " kept");
  return torch::stack(std::vector<torch::Tensor>(hidden_.begin(), hidden_.begin() + tokens)).sum(0);
}

size_t UFinder::text_end(int64_t tokens) const {
  SK_CHECK(tokens >= 1 && tokens <= static_cast<int64_t>(ends_.size()), "U search: ", tokens, " tokens asked, ",
           ends_.size(), " kept");
  return ends_[static_cast<size_t>(tokens - 1)];
}

}  // namespace safekey::infer
