// Syntax tree of the template language subset: expressions and statements, each with its template
// position for error messages.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "safekey/text/jinja_value.h"

namespace safekey::text::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class K {
    Literal,   // value
    Name,      // name
    List,      // args
    Tuple,     // args
    DictLit,   // kwargs-like pairs in `pairs`
    Getattr,   // args[0].name
    Getitem,   // args[0][args[1]]
    Slice,     // args[0][start:stop:step]; args[1..3] may be null
    Call,      // args[0](args[1..], kwargs)
    Filter,    // args[0] | name(args[1..], kwargs)
    Test,      // args[0] is [not] name(args[1..])
    Not,       // not args[0]
    Neg,       // -args[0]
    Pos,       // +args[0]
    Binary,    // args[0] op args[1]: + - * / // % ** ~
    Compare,   // args[0] ops[0] args[1] ops[1] args[2] ...
    And,
    Or,
    Cond,      // args[0] if args[1] else args[2] (args[2] may be null)
  };
  K kind;
  int line = 0, col = 0;
  std::string name;               // Name/Getattr/Call/Filter/Test name; Binary op
  bool negated = false;           // Test: `is not`
  Value value;                    // Literal
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::pair<ExprPtr, ExprPtr>> pairs;  // DictLit
  std::vector<std::string> ops;   // Compare operators: == != < <= > >= in notin
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// An assignment target: a name, `ns.attr`, or a tuple of names.
struct Target {
  std::vector<std::string> names;  // one name, or several for tuple unpacking
  std::string attr;                // non-empty for `ns.attr`
  bool tuple = false;
};

struct Stmt {
  enum class K { Data, Output, If, For, Set, SetBlock, Macro, Break, Continue, With, FilterBlock, Generation };
  K kind;
  int line = 0, col = 0;
  std::string text;                                      // Data
  ExprPtr expr;                                          // Output, Set value, For iterable, FilterBlock filter
  std::vector<std::pair<ExprPtr, Body>> branches;        // If: (test, body)...; else has null test
  Target target;                                         // For / Set / SetBlock
  ExprPtr loop_filter;                                   // For ... if cond
  Body body, else_body;                                  // For body / else; Macro, SetBlock, With body
  std::string name;                                      // Macro name
  std::vector<std::pair<std::string, ExprPtr>> params;   // Macro params (default may be null); With assignments
};

}  // namespace safekey::text::jinja
