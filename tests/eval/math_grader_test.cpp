// \boxed{} extraction and answer normalisation for MATH-500 / AIME.
#include "safekey/eval/math_grader.h"

#include <gtest/gtest.h>

namespace safekey::eval {
namespace {

TEST(MathGrader, ExtractsTheLastBoxedWithBalancedBraces) {
  EXPECT_EQ(*extract_boxed("first \\boxed{1} then \\boxed{\\frac{1}{2}}."), "\\frac{1}{2}");
  EXPECT_EQ(*extract_boxed("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}"), "\\left( 3, \\frac{\\pi}{2} \\right)");
  EXPECT_EQ(*extract_boxed("so $\\boxed 5$"), "5");
  EXPECT_EQ(*extract_boxed("\\fbox{7}"), "7");
  EXPECT_FALSE(extract_boxed("no box here").has_value());
  EXPECT_FALSE(extract_boxed("\\boxed{unclosed").has_value());
}

TEST(MathGrader, Normalisation) {
  EXPECT_EQ(normalize_math_answer("$\\dfrac{1}{2}$"), "\\frac{1}{2}");
  EXPECT_EQ(normalize_math_answer("\\left( 3, \\frac{\\pi}{2} \\right)"), "(3,\\frac{\\pi}{2})");
  EXPECT_EQ(normalize_math_answer("10,\\!080"), "10080");
  EXPECT_EQ(normalize_math_answer("11,\\! 111,\\! 111,\\! 100"), "11111111100");
  EXPECT_EQ(normalize_math_answer("5.0"), "5");
  EXPECT_EQ(normalize_math_answer(".50"), "0.5");
  EXPECT_EQ(normalize_math_answer("120^\\circ"), "120");
  EXPECT_EQ(normalize_math_answer("15\\mbox{ cm}^2"), "15");
  EXPECT_EQ(normalize_math_answer("\\text{(C)}"), "(C)");
  EXPECT_EQ(normalize_math_answer("x = 3"), "3");
  EXPECT_EQ(normalize_math_answer("\\frac12"), "\\frac{1}{2}");
  EXPECT_EQ(normalize_math_answer("\\tfrac{3}{4}"), "\\frac{3}{4}");
  EXPECT_EQ(normalize_math_answer("50\\%"), "50");
}

TEST(MathGrader, Equality) {
  EXPECT_TRUE(math_answers_equal("0.5", "\\frac{1}{2}"));
  EXPECT_TRUE(math_answers_equal("1/2", "\\dfrac12"));
  EXPECT_TRUE(math_answers_equal("-\\frac{3}{8}", "-\\frac{3}{8}"));
  EXPECT_TRUE(math_answers_equal("10080", "10,\\!080"));
  EXPECT_TRUE(math_answers_equal("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)"));
  EXPECT_FALSE(math_answers_equal("3", "4"));
  EXPECT_FALSE(math_answers_equal("", "0"));
  EXPECT_FALSE(math_answers_equal("\\frac{1}{3}", "0.33"));
}

TEST(MathGrader, GradeMathAndAime) {
  EXPECT_TRUE(grade_math("The answer is \\boxed{\\dfrac{14}{3}}.", "\\frac{14}{3}").correct);
  Grade none = grade_math("I think 5", "5");
  EXPECT_FALSE(none.has_answer);
  EXPECT_FALSE(none.correct);
  EXPECT_TRUE(grade_aime("so \\boxed{033}", "33").correct);
  EXPECT_TRUE(grade_aime("the final answer is 204", "204").correct);
  Grade a = grade_aime("\\boxed{20.5}", "20");
  EXPECT_TRUE(a.has_answer);
  EXPECT_FALSE(a.correct);
}

}  // namespace
}  // namespace safekey::eval
