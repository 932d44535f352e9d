// The wire format without a server: request parsing and its errors, and vLLM's deepseek_r1
// reasoning split, whole and streamed (every way of cutting the text into deltas).
#include <gtest/gtest.h>

#include "safekey/serve/openai.h"

namespace safekey::serve {
namespace {

std::optional<ApiError> parse(Endpoint ep, const std::string& body, ParsedRequest* out = nullptr) {
  ParsedRequest tmp;
  Limits lim;
  lim.max_tokens_limit = 100;
  lim.default_max_tokens = 16;
  return parse_request(ep, body, {"tiny"}, lim, out ? out : &tmp);
}

TEST(OpenAiParse, ChatFieldsAndDefaults) {
  ParsedRequest pr;
  auto e = parse(Endpoint::Chat, R"({"model":"tiny","messages":[{"role":"system","content":"be brief"},
      {"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]}],
      "temperature":0,"top_p":0.5,"top_k":3,"seed":7,"stop":["a","bc"],"repetition_penalty":1.2,
      "max_completion_tokens":9,"stream":true,"stream_options":{"include_usage":true}})",
                 &pr);
  ASSERT_FALSE(e) << e->message;
  ASSERT_EQ(pr.request.messages.size(), 2u);
  EXPECT_EQ(pr.request.messages[1].content, "Hi there");
  EXPECT_EQ(pr.params.temperature, 0.0);
  EXPECT_EQ(pr.params.top_p, 0.5);
  EXPECT_EQ(pr.params.top_k, 3);
  EXPECT_EQ(*pr.params.seed, 7u);
  EXPECT_EQ(pr.params.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(pr.params.repetition_penalty, 1.2);
  EXPECT_EQ(pr.params.max_new_tokens, 9);
  EXPECT_TRUE(pr.stream);
  EXPECT_TRUE(pr.include_usage);
  ParsedRequest d;
  ASSERT_FALSE(parse(Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}]})", &d));
  EXPECT_EQ(d.params.max_new_tokens, 16);  // default_max_tokens
  EXPECT_EQ(d.params.temperature, 1.0);    // OpenAI's default
  EXPECT_FALSE(d.stream);
}

TEST(OpenAiParse, CompletionPrompts) {
  ParsedRequest a, b, c;
  ASSERT_FALSE(parse(Endpoint::Completion, R"({"prompt":"Once"})", &a));
  EXPECT_EQ(a.request.prompt, "Once");
  ASSERT_FALSE(parse(Endpoint::Completion, R"({"prompt":["Once"]})", &b));
  EXPECT_EQ(b.request.prompt, "Once");
  ASSERT_FALSE(parse(Endpoint::Completion, R"({"prompt":[1,2,3]})", &c));
  EXPECT_EQ(c.request.prompt_ids, (std::vector<int64_t>{1, 2, 3}));
}

struct Bad {
  Endpoint ep;
  const char* body;
  int status;
  const char* code;
  const char* param;
};

TEST(OpenAiParse, ErrorsNameTheFieldAndCode) {
  const Bad cases[] = {
      {Endpoint::Chat, "{not json", 400, "invalid_json", ""},
      {Endpoint::Chat, "[1,2]", 400, "invalid_type", "body"},
      {Endpoint::Chat, R"({"model":"other","messages":[{"role":"user","content":"x"}]})", 404, "model_not_found", "model"},
      {Endpoint::Chat, R"({"model":5,"messages":[]})", 400, "invalid_type", "model"},
      {Endpoint::Chat, R"({})", 400, "missing_field", "messages"},
      {Endpoint::Chat, R"({"messages":"hi"})", 400, "invalid_type", "messages"},
      {Endpoint::Chat, R"({"messages":[]})", 400, "invalid_value", "messages"},
      {Endpoint::Chat, R"({"messages":[{"role":"robot","content":"x"}]})", 400, "invalid_value", "messages[0].role"},
      {Endpoint::Chat, R"({"messages":[{"role":"user"}]})", 400, "missing_field", "messages[0].content"},
      {Endpoint::Chat, R"({"messages":[{"role":"user","content":5}]})", 400, "invalid_type", "messages[0].content"},
      {Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})", 400, "invalid_type", "temperature"},
      {Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"temperature":-1})", 400, "invalid_value", "temperature"},
      {Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"max_tokens":101})", 400, "invalid_value", "max_tokens"},
      {Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})", 400, "invalid_value", "max_tokens"},
      {Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"max_tokens":2.5})", 400, "invalid_type", "max_tokens"},
      {Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"top_p":0})", 400, "invalid_value", "top_p"},
      {Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"n":2})", 400, "invalid_value", "n"},
      {Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})", 400, "invalid_type", "stream"},
      {Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})", 400, "invalid_type", "stop"},
      {Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"stop":""})", 400, "invalid_value", "stop"},
      {Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"presence_penalty":0.5})", 400, "invalid_value", "presence_penalty"},
      {Endpoint::Chat, R"({"messages":[{"role":"user","content":"x"}],"logprobs":true})", 400, "unsupported", "logprobs"},
      {Endpoint::Completion, R"({})", 400, "missing_field", "prompt"},
      {Endpoint::Completion, R"({"prompt":""})", 400, "invalid_value", "prompt"},
      {Endpoint::Completion, R"({"prompt":["a","b"]})", 400, "invalid_type", "prompt"},
      {Endpoint::Completion, R"({"prompt":{"x":1}})", 400, "invalid_type", "prompt"},
  };
  for (const auto& c : cases) {
    auto e = parse(c.ep, c.body);
    ASSERT_TRUE(e) << c.body;
    EXPECT_EQ(e->status, c.status) << c.body;
    EXPECT_EQ(e->code, c.code) << c.body << " -> " << e->message;
    EXPECT_EQ(e->param, c.param) << c.body;
    EXPECT_FALSE(e->message.empty());
    json body = error_body(*e);
    EXPECT_TRUE(body["error"]["message"].is_string());
    EXPECT_TRUE(body["error"]["type"].is_string());
    EXPECT_EQ(body["error"]["code"], c.code);
  }
}

TEST(Reasoning, SplitLikeDeepseekR1Parser) {
  auto s = split_reasoning("\nI think.\n</think>\n\nThe answer.");
  EXPECT_EQ(*s.reasoning, "\nI think.\n");
  EXPECT_EQ(*s.content, "\n\nThe answer.");
  auto t = split_reasoning("<think>abc</think>def");  // a leading <think> is dropped
  EXPECT_EQ(*t.reasoning, "abc");
  EXPECT_EQ(*t.content, "def");
  auto u = split_reasoning("still thinking, cut by max_tokens");
  EXPECT_EQ(*u.reasoning, "still thinking, cut by max_tokens");
  EXPECT_FALSE(u.content.has_value());
  auto v = split_reasoning("done</think>");
  EXPECT_EQ(*v.reasoning, "done");
  EXPECT_FALSE(v.content.has_value());
}

TEST(Reasoning, StreamAgreesWithTheWholeSplitForEveryCut) {
  const std::string texts[] = {"<think>\nr1 < r2 </thin </think>\n\nans</think>wer", "abc</think>x",
                               "no end tag <think", "</think>", "<thi"};
  for (const auto& text : texts) {
    auto whole = split_reasoning(text);
    for (size_t a = 0; a <= text.size(); ++a) {
      for (size_t b = a; b <= text.size(); b += 3) {
        ReasoningStream rs;
        std::string r, c;
        rs.push(text.substr(0, a), &r, &c);
        rs.push(text.substr(a, b - a), &r, &c);
        rs.push(text.substr(b), &r, &c);
        rs.finish(&r, &c);
        EXPECT_EQ(r, whole.reasoning.value_or("")) << text << " cut " << a << "," << b;
        EXPECT_EQ(c, whole.content.value_or("")) << text << " cut " << a << "," << b;
      }
    }
  }
}

}  // namespace
}  // namespace safekey::serve
