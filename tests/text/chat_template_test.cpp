// ChatFormat: loading the template and special tokens the ways models ship them (string and
// AddedToken tokens, single and named-list templates, model folders, chat_template.jinja), the
// context transformers passes, and the `safekey render` command. Expected strings are the Python
// Jinja2 renders quoted in ../shared/TOKENIZERS.md sections 6-7.
#include <gtest/gtest.h>

#include "safekey/text/chat_template.h"
#include "safekey/util/file.h"
#include "support/support.h"

namespace safekey::text {
namespace {

std::string hf(const std::string& rel) { return test::shared_dir() + "/data/hf-configs/" + rel; }

const std::vector<ChatMessage> kSystemUser = {{"system", "You are a helpful assistant."}, {"user", "What is 17 * 24?"}};
const std::vector<ChatMessage> kMultiTurn = {
    {"user", "Hi there."},
    {"assistant", "<think>\nThe user greets me; reply briefly.\n</think>\n\nHello! How can I help?"},
    {"user", "Tell me a joke about 素数 🧮."}};

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ChatFormat, Qwen3TokenizerConfig) {
  SAFEKEY_REQUIRE_DIR(hf("Qwen3"));
  ChatFormat fmt = ChatFormat::from_path(hf("Qwen3/tokenizer_config.json"));
  EXPECT_FALSE(fmt.special_tokens().bos_token.has_value());
  EXPECT_EQ(fmt.special_tokens().eos_token.value_or(""), "<|im_end|>");
  RenderOptions gen;
  gen.add_generation_prompt = true;
  const std::string want =
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 17 * 24?<|im_end|>\n"
      "<|im_start|>assistant\n";
  EXPECT_EQ(fmt.render(kSystemUser, gen), want);
  gen.extra["enable_thinking"] = false;
  EXPECT_EQ(fmt.render(kSystemUser, gen), want + "<think>\n\n</think>\n\n");
  RenderOptions none;
  EXPECT_EQ(fmt.render({{"system", "Answer tersely.\nUse  two  spaces."}, {"user", "  Leading spaces and trailing\n"},
                        {"assistant", "<think>\nstep 1\n\nstep 2\n</think>\n\n  Done.\n"}},
                       none),
            "<|im_start|>system\nAnswer tersely.\nUse  two  spaces.<|im_end|>\n<|im_start|>user\n  Leading spaces and "
            "trailing\n<|im_end|>\n<|im_start|>assistant\n<think>\nstep 1\n\nstep 2\n</think>\n\n  Done.\n<|im_end|>\n");
  EXPECT_EQ(fmt.keep_thinking_edits(), 0);
}

TEST(ChatFormat, R1DistillConfigWithAddedTokenDicts) {
  SAFEKEY_REQUIRE_DIR(hf("reconstructed"));
  ChatFormat fmt = ChatFormat::from_path(hf("reconstructed/DeepSeek-R1-Distill-Qwen-7B/tokenizer_config.json"));
  EXPECT_EQ(fmt.special_tokens().bos_token.value_or(""), "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(fmt.special_tokens().eos_token.value_or(""), "<｜end▁of▁sentence｜>");
  EXPECT_EQ(fmt.keep_thinking_edits(), 1);
  RenderOptions gen;
  gen.add_generation_prompt = true;
  EXPECT_EQ(fmt.render(kSystemUser, gen),
            "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>What is 17 * 24?<｜Assistant｜><think>\n");
  EXPECT_EQ(fmt.render(kMultiTurn, gen),
            "<｜begin▁of▁sentence｜><｜User｜>Hi there.<｜Assistant｜>\n\nHello! How can I help?<｜end▁of▁sentence｜>"
            "<｜User｜>Tell me a joke about 素数 🧮.<｜Assistant｜><think>\n");
  gen.keep_thinking = true;
  EXPECT_EQ(fmt.render(kMultiTurn, gen),
            "<｜begin▁of▁sentence｜><｜User｜>Hi there.<｜Assistant｜><think>\nThe user greets me; reply briefly.\n"
            "</think>\n\nHello! How can I help?<｜end▁of▁sentence｜><｜User｜>Tell me a joke about 素数 🧮.<｜Assistant｜>"
            "<think>\n");
}

TEST(ChatFormat, LoadsFoldersJinjaFilesAndNamedTemplates) {
  std::string dir = test::make_temp_dir("chat_format");
  // A folder whose config has no template but a chat_template.jinja (newer transformers).
  write_file_atomic(dir + "/tokenizer_config.json", R"({"bos_token": "<s>", "eos_token": null})");
  write_file_atomic(dir + "/chat_template.jinja", "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{% endfor %}\n");
  ChatFormat a = ChatFormat::from_path(dir);
  EXPECT_EQ(a.render({{"user", "x"}}, {}), "<s>[user]");  // the final newline of the template is dropped
  write_file_atomic(dir + "/tokenizer.json", "{}");
  ChatFormat b = ChatFormat::from_path(dir + "/tokenizer.json");  // its folder's config
  EXPECT_EQ(b.render({{"user", "x"}}, {}), "<s>[user]");
  ChatFormat c = ChatFormat::from_path(dir + "/chat_template.jinja");
  EXPECT_EQ(c.render({{"user", "x"}}, {}), "[user]");
  // Named templates.
  std::string named = dir + "/named.json";
  write_file_atomic(named, R"({"chat_template": [{"name": "default", "template": "D{{ messages|length }}"},
                                                {"name": "tool_use", "template": "T{{ tools|length }}"}]})");
  EXPECT_EQ(ChatFormat::from_path(named).render({{"user", "x"}}, {}), "D1");
  RenderOptions with_tools;
  with_tools.tools = ordered_json::parse(R"([{"name": "f"}])");
  EXPECT_EQ(ChatFormat::from_path(named, "tool_use").render({{"user", "x"}}, with_tools), "T1");
  EXPECT_NE(ErrorOf([&] { ChatFormat::from_path(named, "nope"); }).find("no chat template named 'nope' (available: default, tool_use)"),
            std::string::npos);
}

TEST(ChatFormat, ContextAsTransformersPassesIt) {
  ChatFormat f("{{ tools is none }} {{ documents is none }} {{ bos_token is defined }} {{ eos_token }} "
               "{{ add_generation_prompt }} {{ x }}",
               SpecialTokens{std::nullopt, std::string("</s>"), std::nullopt, std::nullopt, {}}, "t");
  RenderOptions o;
  parse_template_var("x={\"a\": [1, \"é\"]}", o.extra);
  EXPECT_EQ(f.render({{"user", "u"}}, o), "True True False </s> False {'a': [1, 'é']}");
  ordered_json extra;
  parse_template_var("enable_thinking=false", extra);
  parse_template_var("name=plain text", extra);
  parse_template_var("flag=True", extra);
  EXPECT_EQ(extra.dump(), R"({"enable_thinking":false,"name":"plain text","flag":true})");
  EXPECT_NE(ErrorOf([&] { parse_template_var("novalue", extra); }).find("expected key=value"), std::string::npos);
}

TEST(ChatFormat, BadConfigsNameFileAndField) {
  std::string dir = test::make_temp_dir("chat_format_bad");
  write_file_atomic(dir + "/a.json", R"({"bos_token": "<s>"})");
  EXPECT_EQ(ErrorOf([&] { ChatFormat::from_path(dir + "/a.json"); }),
            dir + "/a.json: no 'chat_template' (this tokenizer has no chat format)");
  write_file_atomic(dir + "/b.json", R"({"chat_template": "x", "bos_token": 5})");
  EXPECT_EQ(ErrorOf([&] { ChatFormat::from_path(dir + "/b.json"); }),
            dir + "/b.json: field 'bos_token' must be a string or an AddedToken object with 'content'");
  write_file_atomic(dir + "/c.json", R"({"chat_template": "{% for x in y %}"})");
  EXPECT_EQ(ErrorOf([&] { ChatFormat::from_path(dir + "/c.json"); }),
            dir + "/c.json: chat_template:1:17: unexpected end of template, expected 'endfor' or 'else'");
  write_file_atomic(dir + "/d.json", "{\"chat_template\": ");
  EXPECT_NE(ErrorOf([&] { ChatFormat::from_path(dir + "/d.json"); }).find(dir + "/d.json: invalid JSON"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { ChatFormat::from_path(dir + "/missing"); }).find("no such file or folder"), std::string::npos);
}

TEST(RenderCommand, PrintsTheRenderedTextExactly) {
  SAFEKEY_REQUIRE_DIR(hf("Qwen3"));
  std::string dir = test::make_temp_dir("render_cmd");
  ordered_json msgs = ordered_json::array();
  for (const auto& m : kSystemUser) msgs.push_back({{"role", m.role}, {"content", m.content}});
  write_file_atomic(dir + "/m.json", msgs.dump());
  auto r = test::run_safekey({"render", "--tokenizer", hf("Qwen3/tokenizer_config.json"), "--messages", dir + "/m.json",
                              "--add-generation-prompt", "--var", "enable_thinking=false"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 17 * 24?<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  // --keep-thinking on the R1-Distill template; repeated --var.
  ordered_json multi = ordered_json::array();
  for (const auto& m : kMultiTurn) multi.push_back({{"role", m.role}, {"content", m.content}});
  write_file_atomic(dir + "/multi.json", multi.dump());
  r = test::run_safekey({"render", "--tokenizer", hf("reconstructed/DeepSeek-R1-Distill-Llama-8B"), "--messages",
                         dir + "/multi.json", "--keep-thinking"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "<｜begin▁of▁sentence｜><｜User｜>Hi there.<｜Assistant｜><think>\nThe user greets me; reply briefly.\n"
            "</think>\n\nHello! How can I help?<｜end▁of▁sentence｜><｜User｜>Tell me a joke about 素数 🧮.");
  write_file_atomic(dir + "/t.jinja", "{{ a }}-{{ b }}-{{ messages|length }}");
  r = test::run_safekey({"render", "--tokenizer", dir + "/t.jinja", "--messages", dir + "/m.json", "--var", "a=1", "--var", "b=x"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1-x-2");
  // Errors: one line, exit status 1.
  write_file_atomic(dir + "/raise.jinja", "{{ raise_exception('roles must alternate') }}");
  r = test::run_safekey({"render", "--tokenizer", dir + "/raise.jinja", "--messages", dir + "/m.json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("raise.jinja:1:4: template raised an exception: roles must alternate"), std::string::npos) << r.err;
  r = test::run_safekey({"render", "--tokenizer", dir + "/t.jinja", "--messages", dir + "/nope.json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nope.json"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace safekey::text
