// `safekey render`: renders a conversation with the model's own chat template, exactly as
// transformers' apply_chat_template(tokenize=False) does, and prints the string as is (no newline
// added). External checks call it: keep the interface stable.
//
//   safekey render --tokenizer MODEL_DIR --messages conv.json [--add-generation-prompt]
//                  [--keep-thinking] [--var enable_thinking=false ...] [--tools tools.json]
#include <iostream>
#include <iterator>

#include "cli.h"
#include "safekey/text/chat_template.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey {
namespace {

ordered_json read_ordered_json(const std::string& path) {
  std::string text = path == "-" ? std::string(std::istreambuf_iterator<char>(std::cin), {}) : read_file(path);
  try {
    return ordered_json::parse(text);
  } catch (const std::exception& e) {
    fail(path, ": invalid JSON (", e.what(), ")");
  }
}

int run_render(cli::Args& args) {
  const std::string tok = args.required("tokenizer");
  const std::string msg_path = args.required("messages");
  text::ChatFormat fmt = text::ChatFormat::from_path(tok, args.str("template-name"));
  ordered_json messages = read_ordered_json(msg_path);
  if (messages.is_object() && messages.contains("messages")) messages = messages["messages"];
  SK_CHECK(messages.is_array(), msg_path, ": expected a JSON list of {role, content} messages");
  for (size_t i = 0; i < messages.size(); ++i)
    SK_CHECK(messages[i].is_object() && messages[i].contains("role"), msg_path, ": message ", i,
             ": expected an object with 'role' and 'content'");
  text::RenderOptions opt;
  opt.add_generation_prompt = args.on("add-generation-prompt");
  opt.keep_thinking = args.on("keep-thinking");
  if (args.given("tools")) opt.tools = read_ordered_json(args.str("tools"));
  if (args.given("var")) {
    std::string all = args.str("var");
    size_t pos = 0;
    while (pos <= all.size()) {
      size_t nl = all.find('\n', pos);
      if (nl == std::string::npos) nl = all.size();
      text::parse_template_var(all.substr(pos, nl - pos), opt.extra);
      pos = nl + 1;
    }
  }
  if (opt.keep_thinking && fmt.keep_thinking_edits() == 0 && args.on("verbose"))
    std::cerr << "note: " << fmt.where() << " has no think-stripping clause; --keep-thinking changes nothing\n";
  std::cout << fmt.render_json(messages, opt);
  std::cout.flush();
  return 0;
}

cli::Registrar reg({"render", "render a conversation with the model's chat template",
                    "safekey render --tokenizer MODEL_DIR --messages conv.json [--add-generation-prompt] "
                    "[--keep-thinking] [--var key=value ...]\nPrints the rendered text exactly (no newline added).",
                    run_render});

}  // namespace
}  // namespace safekey
