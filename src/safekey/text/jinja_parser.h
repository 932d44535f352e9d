// Parser of the template subset: {{ expressions }} with Jinja's precedence (or, and, not,
// comparisons and `in`, + -, ~, * / // %, **, unary, then postfix `.attr`, `[index]`, `[a:b:c]`,
// calls, `| filter(...)` and `is [not] test`), and the statements if/elif/else, for (tuple targets,
// `if` filter, else), set (name, ns.attr, tuple, block form), macro, with, break/continue and the
// transformers `generation` block. Anything else is an Error naming the template line:column.
#pragma once
#include <string>
#include <vector>

#include "safekey/text/jinja_ast.h"
#include "safekey/text/jinja_lexer.h"

namespace safekey::text::jinja {

Body parse_template(const std::vector<Token>& tokens, const std::string& name);

}  // namespace safekey::text::jinja
