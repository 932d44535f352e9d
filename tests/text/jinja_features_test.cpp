// Language features of the chat-template engine, each against the output of Python Jinja2 3.1
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, transformers' tojson)
// for the same template and context; the expected strings were produced by that reference.
#include <gtest/gtest.h>

#include "safekey/text/jinja_template.h"
#include "safekey/util/error.h"

namespace safekey::text::jinja {
namespace {

const char* kContext = R"J({"d": {"a": 1, "items": 2, "z": [1, 2]}, "s": "héllo wörld", "n": null, "l": [3, 1, 2], "msgs": [{"role": "user", "content": "hi", "ok": true}, {"role": "assistant", "content": "yo"}]})J";

std::string Render(const std::string& src) {
  Template t(src, "test");
  return t.render(from_json(ordered_json::parse(kContext)));
}

void ExpectRender(const std::string& src, const std::string& want) {
  std::string got;
  try {
    got = Render(src);
  } catch (const Error& e) {
    ADD_FAILURE() << "template " << src << "\nthrew: " << e.what();
    return;
  }
  EXPECT_EQ(got, want) << "template: " << src;
}

void ExpectRenderError(const std::string& src) {
  EXPECT_THROW(Render(src), Error) << "template: " << src;
}

TEST(Jinja, FeaturesMatchPythonJinja2) {
  ExpectRender(R"J({% set x = 0 %}{% for i in range(3) %}{{ x }}{% set x = i %}{% endfor %}{{ x }})J", R"J(0000)J");
  ExpectRender(R"J({% for i in range(3) %}{{ x }}{% set x = i %}{{ x }}{% endfor %})J", R"J(012)J");
  ExpectRender(R"J({{ d['items'] }}|{{ d.a }}|{{ d.missing }}|{{ n.x }})J", R"J(2|1||)J");
  ExpectRender(R"J({{ s[::-1] }}|{{ s|length }}|{{ s[1] }}|{{ s[-3:] }}|{{ s[1:8:2] }}|{{ l[::-1] }}|{{ l[5] }})J", R"J(dlröw olléh|11|é|rld|él ö|[2, 1, 3]|)J");
  ExpectRender(R"J({{ [1,'a',none,true,1.5,{'k':'v'}] }}|{{ (1,2) }}|{{ (1,) }}|{{ 1/2 }}|{{ 4/2 }}|{{ 7//2 }}|{{ -7//2 }}|{{ 7%3 }}|{{ -7 % 3 }}|{{ 2**10 }}|{{ 1e20 }}|{{ 1.5e-7 }}|{{ 0.1+0.2 }})J", R"J([1, 'a', None, True, 1.5, {'k': 'v'}]|(1, 2)|(1,)|0.5|2.0|3|-4|1|2|1024|1e+20|1.5e-07|0.30000000000000004)J");
  ExpectRender(R"J({{ 'a' ~ 1 ~ none ~ undefinedvar }}|{{ 'abc' * 2 }}|{{ [1] + [2] }}|{{ true + 1 }})J", R"J(a1None|abcabc|[1, 2]|2)J");
  ExpectRender(R"J({% if true %}{% set z = 1 %}{% endif %}{{ z }})J", R"J(1)J");
  ExpectRender(R"J({{ 'x'|tojson }}{{ {'a': [1, 2.0, 'é', none, true]}|tojson }}{{ none|tojson }}{{ d|tojson(indent=2) }}{{ "a\"b\n\u0001"|tojson }})J", R"J("x"{"a": [1, 2.0, "é", null, true]}null{
  "a": 1,
  "items": 2,
  "z": [
    1,
    2
  ]
}"a\"b\n\u0001")J");
  ExpectRender(R"J({{ 3 is divisibleby 3 }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 1 is number }}{{ true is number }}{{ none is none }}{{ x is defined }}{{ d.a is defined }}{{ d.q is undefined }}{{ 1 is integer }}{{ 1.0 is float }}{{ 'a' is equalto 'a' }}{{ true is true }}{{ false is false }}{{ 0 is false }}{{ l is sequence }}{{ 3 is odd }}{{ 'x' is not none }})J", R"J(TrueTrueTrueTrueTrueTrueTrueFalseTrueTrueTrueTrueTrueTrueTrueFalseTrueTrueTrue)J");
  ExpectRender(R"J({{ '%s-%d' % ('a', 3) }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}|{{ '{}-{}'.format(1,'x') }}|{{ '{0}{name}'.format(1, name='n') }})J", R"J(a-3|['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|['a b', 'c']|1-x|1n)J");
  ExpectRender(R"J({{ [3,1,2]|sort }}{{ ['b','A','c']|sort }}{{ [1,2]|join(', ') }}{{ 'abc'|list }}{{ {'a':1}|items|list }}{{ l|sort(reverse=true) }}{{ msgs|map(attribute='role')|join(',') }}{{ msgs|selectattr('ok')|list|length }}{{ msgs|rejectattr('ok')|map(attribute='content')|first }}{{ msgs|selectattr('role', 'equalto', 'assistant')|list|length }}{{ ['a','b']|map('upper')|list }})J", R"J([1, 2, 3]['A', 'b', 'c']1, 2['a', 'b', 'c'][('a', 1)][3, 2, 1]user,assistant1yo1['A', 'B'])J");
  ExpectRender(R"J({{ 'hello world-foo'|title }}|{{ 'hELLO'|capitalize }}|{{ 'hello world'.title() }}|{{ 'ABC'.lower() }}|{{ 'abc'.upper() }}|{{ 'aXbX'.replace('X', 'y') }}|{{ 'aXbX'|replace('X', 'y', 1) }})J", R"J(Hello World-Foo|Hello|Hello World|abc|ABC|ayby|aybX)J");
  ExpectRender(R"J({{ x|default('d') }}|{{ ''|default('e', true) }}|{{ none|default('f') }}|{{ x|d('g') }})J", R"J(d|e|None|g)J");
  ExpectRender(R"J({{ 1 == 1.0 }}{{ true == 1 }}{{ 'a' in 'cat' }}{{ 1 in [1] }}{{ 'a' in {'a':1} }}{{ 'b' not in 'abc' }}{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ 'ab' < 'b' }}{{ [1,2] == [1,2] }}{{ none == none }}{{ x == none }})J", R"J(TrueTrueTrueTrueTrueFalseTrueFalseTrueTrueTrueFalse)J");
  ExpectRender(R"J({{ 1.5|round }}{{ 2.5|round }}{{ 2.567|round(2) }}{{ '3'|int }}{{ 'a'|int }}{{ '3.5'|float }}{{ -3|abs }}{{ 3.7|int }}{{ [1,2,3]|sum }}{{ [3,1]|max }}{{ [3,1]|min }}{{ 'aBc'|reverse }}{{ [1,2]|reverse|list }}{{ [1,1,2]|unique|list }})J", R"J(2.02.02.57303.533631cBa[2, 1][1, 2])J");
  ExpectRender(R"J({{ {'b':1,'a':2}|dictsort }}|{{ 'a\nb'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent }}|{{ 'abc'|center(7) }}|{{ '  x  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ 'a b  c'|wordcount }})J", R"J([('a', 2), ('b', 1)]|a
  b|  a
  b|a

    b|  abc  |x|a|3)J");
  ExpectRender(R"J({{ 'hello'.startswith(('x','h')) }}{{ 'hello'.endswith('lo') }}{{ {'a':1}.get('b', 3) }}{{ {'a':1}.get('a') }}{{ {'a':1}.get('q') }}{{ d.keys()|list }}{{ d.values()|list }}{{ 'abcabc'.find('c') }}{{ 'abcabc'.rfind('c') }}{{ 'abcabc'.count('b') }}{{ '-'.join(['a','b']) }}{{ '12'.isdigit() }}{{ '\n\nx\n'.strip('\n') }}|{{ '\n\nx\n'.lstrip('\n') }}|{{ '\n\nx\n'.rstrip() }}|{{ 'xyhix'.strip('xy') }})J", R"J(TrueTrue31None['a', 'items', 'z'][1, 2, [1, 2]]252a-bTruex|x
|

x|hi)J");
  ExpectRender(R"J({% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %})J", R"J(a=1;items=2;z=[1, 2];)J");
  ExpectRender(R"J({% for m in msgs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem.role if loop.previtem is defined else '-' }}{{ loop.cycle('a','b') }};{% endfor %})J", R"J(1021TrueFalse2-a;2110FalseTrue2userb;)J");
  ExpectRender(R"J({% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %})J", R"J(0134)J");
  ExpectRender(R"J({% for i in [] %}x{% else %}empty{% endfor %}|{% for i in range(5) if i is odd %}{{ i }}{{ loop.length }}{% endfor %})J", R"J(empty|1232)J");
  ExpectRender(R"J({% set ns = namespace(a=1, b='x') %}{% for i in range(3) %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }})J", R"J(4x)J");
  ExpectRender(R"J({% macro f(a, b='q') %}[{{a}}{{b}}{{ c }}]{% endmacro %}{% set c = 3 %}{{ f(1) }}{{ f(1, b=2) }}{{ f(b=5, a=4) }})J", R"J([1q3][123][453])J");
  ExpectRender(R"J({% set a, b = 1, 2 %}{{ a }}{{ b }}{% set blk %}in {{ a }}{% endset %}[{{ blk }}]{% with q = 5 %}{{ q }}{% endwith %}{{ q }})J", R"J(12[in 1]5)J");
  ExpectRender(R"J({% if false %}a{% elif n is none %}b{% else %}c{% endif %}{{ 'y' if n else 'z' }}{{ 'w' if n }}{{ not n }}{{ n or 'o' }}{{ 1 and 2 }}{{ 0 and 2 }}{{ -(1+2)*3 }})J", R"J(bzTrueo20-9)J");
  ExpectRender(R"J(  {% if true %}
    text
  {% endif %}
  {{ 'v' }}
  {%+ if true %}plus{% endif %}
{%- if true -%}
   stripped   
{%- endif %}
{# comment #}
  {# indented comment #}
after)J", R"J(    text
  v
  plusstrippedafter)J");
  ExpectRender(R"J({% raw %}{{ raw }} {% if %}{% endraw %}|{{ 'a' }}{# c -#}   x)J", R"J({{ raw }} {% if %}|ax)J");
  ExpectRender(R"J(a {{- 'b' -}} c {%- if true %} d {% endif -%}
  e)J", R"J(abc d e)J");
  ExpectRenderError(R"J({{ raise_exception('boom') }})J");  // Jinja2: ERR TemplateError
  ExpectRenderError(R"J({{ undefinedvar.attr }})J");  // Jinja2: ERR UndefinedError
  ExpectRenderError(R"J({{ 1 + 'a' }})J");  // Jinja2: ERR TypeError
  ExpectRenderError(R"J({{ [1,2].append(3) }})J");  // Jinja2: ERR SecurityError
  ExpectRender(R"J({{ "\u00e9\x41\101\n\t" }}|{{ 'it''s' }}|{{ "a" "b" }}|{{ '\d' }})J", R"J(éAA
	|its|ab|\d)J");
  ExpectRenderError(R"J({{ 1_000 }}{{ 0.5 }}{{ 10 // 3 * 2 }}{{ 2 ** 3 ** 2 }}{{ 'a' + 'b' ~ 'c' }}{{ 1 + 2 ~ 3 }})J");  // Jinja2: ERR TypeError
  ExpectRender(R"J({{ d.z.0 }}{{ d['z'][1] }}{{ msgs[0].content }}{{ msgs[-1]['role'] }}{{ (msgs|last).content }}{{ msgs|length - 1 }}
)J", R"J(12hiassistantyo1)J");
}

}  // namespace
}  // namespace safekey::text::jinja
