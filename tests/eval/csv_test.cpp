// The RFC 4180 reader: quoting, multi-line fields, line endings, and errors naming file:line:column.
#include "safekey/eval/csv.h"

#include <gtest/gtest.h>

#include "safekey/util/error.h"
#include "support/support.h"

namespace safekey::eval {
namespace {

std::string error_of(const std::string& text) {
  return test::error_of([&] { parse_csv(text, "x.csv"); });
}

TEST(Csv, QuotedFieldsWithCommasQuotesAndLineBreaks) {
  auto t = parse_csv("a,b,c\n1,\"x, y\",\"he said \"\"hi\"\"\"\n2,\"line1\nline2\r\nline3\",\n", "x.csv");
  ASSERT_EQ(t.header, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][1], "x, y");
  EXPECT_EQ(t.rows[0][2], "he said \"hi\"");
  EXPECT_EQ(t.rows[1][1], "line1\nline2\r\nline3");
  EXPECT_EQ(t.rows[1][2], "");
  EXPECT_EQ(t.row_lines, (std::vector<size_t>{2, 3}));
}

TEST(Csv, CrLfBomBlankLinesAndNoFinalNewline) {
  auto t = parse_csv("\xEF\xBB\xBFid,p\r\n1,a\r\n\r\n2,\"\"\r\n3,c", "x.csv");
  ASSERT_EQ(t.header[0], "id");
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[1][1], "");
  EXPECT_EQ(t.rows[2][1], "c");
  EXPECT_EQ(t.row_lines[2], 5u);
  EXPECT_EQ(t.column("p"), 1);
  EXPECT_EQ(t.column("q"), -1);
  EXPECT_THROW(t.require_column("q", "x.csv"), Error);
}

TEST(Csv, ErrorsNameFileLineAndColumn) {
  EXPECT_EQ(error_of("a,b\n1,\"open\n2,3\n").substr(0, 12), "x.csv:2:3: q");
  EXPECT_NE(error_of("a,b\n1,2\n3,x\"y\n").find("x.csv:3:4: quote inside an unquoted field"),
            std::string::npos);
  EXPECT_NE(error_of("a,b\n\"q\"z,2\n").find("x.csv:2:4: unexpected character after a closing quote"),
            std::string::npos);
  EXPECT_NE(error_of("a,b\n1,2\n1,2,3\n").find("x.csv:3:1: record has 3 fields, the header has 2"),
            std::string::npos);
  EXPECT_NE(error_of("").find("empty CSV"), std::string::npos);
}

}  // namespace
}  // namespace safekey::eval
