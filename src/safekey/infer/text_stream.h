// Incremental detokenization with stop strings, for one generated sequence.
//
// Byte-level BPE tokens can end inside a UTF-8 character, and SentencePiece-style decoders change a
// token's text depending on its neighbours, so text is decoded over a sliding window (the last
// confirmed token boundary .. now) and only grows when the window ends on a complete character.
// Stop strings are searched in the confirmed text; text that could still be the start of a stop
// string is held back from the stream until it cannot be.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace safekey::infer {

using DecodeFn = std::function<std::string(const std::vector<int64_t>&)>;

class TextStream {
 public:
  TextStream(DecodeFn decode, std::vector<std::string> stop);
  // Adds one generated token. Returns true when a stop string matched (text() is then cut before it).
  bool push(int64_t token);
  // Flushes what the window still holds (end of generation); text() becomes final.
  void finish();
  // Text that is final and may be sent to a client now; advances the emitted mark.
  std::string take_ready();
  const std::string& text() const { return text_; }
  const std::string& matched_stop() const { return matched_; }

 private:
  bool check_stop(size_t search_from);
  DecodeFn decode_;
  std::vector<std::string> stop_;
  size_t max_stop_ = 0;
  std::vector<int64_t> ids_;
  size_t prefix_ = 0, read_ = 0;  // window [prefix_, end) of ids_; [prefix_, read_) is confirmed
  std::string text_;              // confirmed text
  size_t emitted_ = 0;            // bytes of text_ handed out by take_ready()
  bool stopped_ = false, finished_ = false;
  std::string matched_;
};

// Length of the longest prefix of `s` that is valid UTF-8 ending on a character boundary.
size_t utf8_complete_prefix(const std::string& s);

}  // namespace safekey::infer
