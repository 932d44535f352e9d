// Response normalisation (SPEC.md section 2) and code-point / byte offsets.
#include <gtest/gtest.h>

#include "safekey/data/response.h"

using namespace safekey::data;

TEST(Normalize, RebuildsThinkAndAnswer) {
  auto n = normalize_response_parts("<think>\nI think.\n</think>\n\nAnswer.");
  EXPECT_TRUE(n.has_think);
  EXPECT_EQ(n.text, "<think>\nI think.\n</think>\n\nAnswer.");
  EXPECT_EQ(n.thinking, "I think.");
  EXPECT_EQ(n.answer, "Answer.");
  EXPECT_EQ(n.thinking_begin, 8u);
  EXPECT_EQ(n.thinking_end, 16u);
}

TEST(Normalize, WhitespaceAroundThinkIsRebuilt) {
  EXPECT_EQ(normalize_response("  \n<think>   a b \n\n\t</think>   \n\n\nans  \n"),
            "<think>\na b\n</think>\n\nans");
  // Unicode whitespace counts as \s in Python: ideographic space, NBSP, line separator, NEL.
  EXPECT_EQ(normalize_response("\u3000<think>\u00a0x\u2028</think>\u0085y\u2003"),
            "<think>\nx\n</think>\n\ny");
  // Zero-width space is not whitespace for Python.
  EXPECT_EQ(normalize_response("<think>\u200bx</think>y"), "<think>\n\u200bx\n</think>\n\ny");
}

TEST(Normalize, EscapedSlashBecomesSlash) {
  EXPECT_EQ(normalize_response("<think>a\\/b</think>http:\\/\\/x"), "<think>\na/b\n</think>\n\nhttp://x");
  // Python str.replace scans left to right: "\\\\/" (backslash backslash slash) -> "\\/".
  EXPECT_EQ(normalize_response("<think>\\\\/</think>"), "<think>\n\\/\n</think>\n\n");
}

TEST(Normalize, FirstCloseTagEndsTheThinking) {
  auto n = normalize_response_parts("pre <think>a</think> b </think> c");
  EXPECT_TRUE(n.has_think);
  EXPECT_EQ(n.thinking, "a");
  EXPECT_EQ(n.answer, "b </think> c");
  EXPECT_EQ(normalize_response("<think></think>"), "<think>\n\n</think>\n\n");
}

TEST(Normalize, MissingThinkFallsBackLikeTheReference) {
  for (const char* raw : {"just an answer ", "<think> never closed", "</think> before <think>"}) {
    auto n = normalize_response_parts(raw);
    EXPECT_FALSE(n.has_think) << raw;
    EXPECT_EQ(n.thinking, "");
    EXPECT_EQ(n.text, "<think>\n\n</think>\n\n" + std::string(python_strip(raw)));
  }
}

TEST(Offsets, CodePointsWithCjkAndEmoji) {
  // "a中😀b": 4 code points, bytes 1 + 3 + 4 + 1.
  const std::string s = "a\u4e2d\U0001F600b";
  EXPECT_EQ(s.size(), 9u);
  EXPECT_EQ(codepoint_count(s), 4u);
  EXPECT_EQ(byte_of_codepoint(s, 0), 0u);
  EXPECT_EQ(byte_of_codepoint(s, 2), 4u);
  EXPECT_EQ(byte_of_codepoint(s, 3), 8u);
  EXPECT_EQ(byte_of_codepoint(s, 4), 9u);
  EXPECT_EQ(byte_of_codepoint(s, 5), std::string::npos);
  EXPECT_EQ(codepoint_of_byte(s, 4), 2u);
  EXPECT_EQ(codepoint_of_byte(s, 5), std::string::npos);  // inside the emoji
  EXPECT_EQ(codepoint_of_byte(s, 10), std::string::npos);
  EXPECT_TRUE(is_utf8_boundary(s, 1));
  EXPECT_FALSE(is_utf8_boundary(s, 2));
  EXPECT_TRUE(is_utf8_boundary(s, 9));
  EXPECT_EQ(slice_codepoints(s, 1, 3), "\u4e2d\U0001F600");
  EXPECT_EQ(slice_codepoints(s, 3, 100), "b");
  EXPECT_EQ(slice_codepoints(s, 3, 1), "");
  // The thinking span in code points, as Python counts it.
  auto n = normalize_response_parts("<think>\u4e2d\u6587\U0001F600</think>ok");
  EXPECT_EQ(n.thinking_end, 11u);
  EXPECT_EQ(slice_codepoints(n.text, n.thinking_begin, n.thinking_end), "\u4e2d\u6587\U0001F600");
}

TEST(Offsets, Utf8Validity) {
  size_t bad = 0;
  EXPECT_TRUE(utf8_valid("ok \u00e9 \uFFFD"));
  EXPECT_FALSE(utf8_valid(std::string("ab\xC3", 3), &bad));
  EXPECT_EQ(bad, 2u);
  EXPECT_FALSE(utf8_valid("\xC0\xAF", &bad));  // overlong "/"
  EXPECT_FALSE(utf8_valid("\xED\xA0\x80", &bad));  // a surrogate
  std::string out;
  utf8_append(out, 0x1F600);
  EXPECT_EQ(out, "\U0001F600");
}
