// Bad templates and failing renders: one Error naming the template and the line:column.
#include <gtest/gtest.h>

#include "safekey/text/jinja_template.h"
#include "safekey/util/error.h"

namespace safekey::text::jinja {
namespace {

std::string ErrorOf(const std::string& src, const std::string& ctx = "{}") {
  try {
    Template t(src, "tpl");
    t.render(from_json(ordered_json::parse(ctx)));
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(JinjaErrors, NameThePosition) {
  EXPECT_EQ(ErrorOf("{{ x | nofilter }}"), "tpl:1:6: no filter named 'nofilter'");
  EXPECT_EQ(ErrorOf("line one\n{% include 'x' %}"), "tpl:2:4: unsupported template construct 'include'");
  EXPECT_EQ(ErrorOf("ab\n  {{ x is nosuchtest }}"), "tpl:2:8: no test named 'nosuchtest'");
  EXPECT_EQ(ErrorOf("{{ 'abc }}"), "tpl:1:4: unterminated string literal");
  EXPECT_EQ(ErrorOf("{% if x %}no end"), "tpl:1:17: unexpected end of template, expected 'elif' or 'else' or 'endif'");
  EXPECT_EQ(ErrorOf("{{ foo( }}"), "tpl:1:9: unexpected '}', expected ')'");
  EXPECT_EQ(ErrorOf("{# never closed"), "tpl:1:1: missing end of comment tag");
  EXPECT_EQ(ErrorOf("{% for x in xs recursive %}{% endfor %}"), "tpl:1:16: recursive loops are not supported");
  EXPECT_EQ(ErrorOf("{{ a ) }}"), "tpl:1:6: unexpected ')'");
}

TEST(JinjaErrors, RuntimeErrorsNameThePosition) {
  EXPECT_EQ(ErrorOf("\n\n  {{ undefinedvar.attr }}"), "tpl:3:18: 'undefinedvar' is undefined");
  EXPECT_EQ(ErrorOf("{% for x in 5 %}{% endfor %}"), "tpl:1:13: 'int' object is not iterable");
  EXPECT_EQ(ErrorOf("{{ 1 + 'a' }}"), "tpl:1:6: unsupported operand type(s) for +: 'int' and 'str'");
  EXPECT_EQ(ErrorOf("{{ [1].append(2) }}"), "tpl:1:7: access to attribute 'append' of 'list' object is unsafe.");
  EXPECT_EQ(ErrorOf("{{ 1 // 0 }}"), "tpl:1:6: integer division or modulo by zero");
}

TEST(JinjaErrors, RaiseExceptionIsAClearError) {
  std::string src =
      "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}"
      "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";
  EXPECT_EQ(ErrorOf(src, R"({"messages": [{"role": "user"}, {"role": "tool"}]})"),
            "tpl:1:71: template raised an exception: Only user and assistant roles are supported!");
  EXPECT_EQ(ErrorOf(src, R"({"messages": [{"role": "user"}]})"), "(no error)");
}

TEST(JinjaErrors, KeepThinkingClauseDetection) {
  const std::string clause =
      "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}";
  Template t("{% set content = c %}" + clause + "{{ content }}", "tpl");
  EXPECT_EQ(t.disable_think_stripping(), 1);
  EXPECT_EQ(t.render(from_json(ordered_json::parse(R"({"c": "<think>a</think>b"})"))), "<think>a</think>b");
  // A clause that does something else is left alone.
  Template other("{% set content = c %}{% if '</think>' in content %}{% set content = content.split('</think>')[0] %}"
                 "{% endif %}{{ content }}",
                 "tpl");
  EXPECT_EQ(other.disable_think_stripping(), 0);
  EXPECT_EQ(other.render(from_json(ordered_json::parse(R"({"c": "<think>a</think>b"})"))), "<think>a");
}

}  // namespace
}  // namespace safekey::text::jinja
