// libFuzzer target for the chat-template lexer, parser and interpreter (built with -DSAFEKEY_FUZZ=ON).
// Input: template text, optionally followed by "\n@@CTX@@\n" and a JSON context. Any input must end
// in a rendered string or a safekey::Error, never a crash, hang or sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string>

#include "safekey/text/jinja_template.h"
#include "safekey/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  std::string src = input, ctx_text;
  size_t sep = input.find("\n@@CTX@@\n");
  if (sep != std::string::npos) {
    src = input.substr(0, sep);
    ctx_text = input.substr(sep + 9);
  }
  safekey::ordered_json ctx = safekey::ordered_json::parse(ctx_text, nullptr, false);
  if (ctx.is_discarded() || !ctx.is_object())
    ctx = safekey::ordered_json::parse(
        R"({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u<think>a</think>b"},
            {"role": "assistant", "content": "<think>\nx\n</think>\n\ny"}], "add_generation_prompt": true,
            "bos_token": "<s>", "tools": null})");
  try {
    safekey::text::jinja::Template t(src, "fuzz");
    (void)t.render(safekey::text::jinja::from_json(ctx));
    safekey::text::jinja::Template keep(src, "fuzz");
    if (keep.disable_think_stripping() > 0) (void)keep.render(safekey::text::jinja::from_json(ctx));
  } catch (const safekey::Error&) {
  }
  return 0;
}
