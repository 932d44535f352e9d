#!/usr/bin/python3
"""Regenerates (or checks) the expected outputs of tests/text/jinja_features.json with Python Jinja2,
set up as transformers renders chat templates (and as ../shared/tools/tokref/render_chat.py does):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]), a
json.dumps-based `tojson` filter (ensure_ascii=False) and the `raise_exception` global.

The file holds one context and a list of cases, each a template with either its expected output
("out") or the class name of the exception Jinja2 raises ("error"). jinja_features_test.cpp renders
every template with the project's engine and compares.

usage: /usr/bin/python3 tests/text/jinja_features_gen.py [--check] tests/text/jinja_features.json
  without --check: rewrites "out"/"error" of every case (templates and order stay) and reports changes
  --check: exits 1 listing the cases whose committed expectation differs from Jinja2's output;
           exits 77 (a skipped test for ctest) when python3-jinja2 is not installed.
"""
import json
import sys

try:
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("jinja_features_gen: python3-jinja2 is not installed (apt-get install python3-jinja2); "
          "cannot regenerate or check the Jinja feature expectations: skipped")
    sys.exit(77)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def expectation(env, template, context):
    try:
        return {"out": env.from_string(template).render(**context)}
    except Exception as e:  # the C++ test only checks that the engine fails too
        return {"error": type(e).__name__}


def main(argv):
    args = [a for a in argv[1:] if a != "--check"]
    check = "--check" in argv[1:]
    if len(args) != 1:
        print(__doc__)
        return 2
    path = args[0]
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    env = environment()
    stale = []
    for i, case in enumerate(doc["cases"]):
        want = expectation(env, case["template"], doc["context"])
        have = {k: case[k] for k in ("out", "error") if k in case}
        if have != want:
            stale.append((i, case["template"], have, want))
            case.pop("out", None)
            case.pop("error", None)
            case.update(want)
    for i, tpl, have, want in stale:
        print("case %d: template %s\n  committed: %s\n  jinja2 %s: %s"
              % (i, json.dumps(tpl, ensure_ascii=False), json.dumps(have, ensure_ascii=False), jinja2.__version__,
                 json.dumps(want, ensure_ascii=False)))
    if check:
        if stale:
            print("jinja_features_gen: %d of %d expectations are not what Jinja2 %s renders; regenerate with "
                  "/usr/bin/python3 tests/text/jinja_features_gen.py %s" % (len(stale), len(doc["cases"]),
                                                                          jinja2.__version__, path))
            return 1
        print("jinja_features_gen: all %d expectations match Jinja2 %s" % (len(doc["cases"]), jinja2.__version__))
        return 0
    doc["generated_by"] = "tests/text/jinja_features_gen.py with Jinja2 %s" % jinja2.__version__
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("jinja_features_gen: wrote %s (%d cases, %d changed)" % (path, len(doc["cases"]), len(stale)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
