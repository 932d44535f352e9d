// A compiled chat template: the Jinja subset that Hugging Face chat templates use, rendered with
// Python-Jinja semantics as transformers configures it (ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks, loop controls; a json.dumps-based `tojson`; the `raise_exception`
// and `strftime_now` globals). See docs/chat_template.md for the supported language.
//
//   jinja::Template t(source, "tokenizer_config.json:chat_template");
//   std::string out = t.render(context);   // context: a Dict value (messages, add_generation_prompt, ...)
//
// Errors (syntax, unsupported constructs, undefined operations, raise_exception) throw
// safekey::Error naming the template and the line:column.
#pragma once
#include <memory>
#include <string>

#include "safekey/text/jinja_ast.h"
#include "safekey/text/jinja_value.h"

namespace safekey::text::jinja {

class Template {
 public:
  Template(const std::string& source, std::string name = "chat_template");
  // Renders with the variables of `context` (a Dict value) as the template's globals.
  std::string render(const Value& context) const;
  const std::string& name() const { return name_; }

  // The SafeKey reference's edit for keeping assistant reasoning: disables every clause of the form
  //   {% if '</think>' in X %}{% set X = X.split('</think>')[-1] %}{% endif %}
  // (the condition becomes false, exactly as deleting the clause). Returns how many were found.
  int disable_think_stripping();

 private:
  std::string name_;
  std::shared_ptr<Body> body_;
};

}  // namespace safekey::text::jinja
