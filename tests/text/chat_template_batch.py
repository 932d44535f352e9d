#!/usr/bin/python3
"""Renders many chat-template cases in one process, with the same Jinja environment as
../shared/tools/tokref/render_chat.py (which it imports), for the conformance test.

usage: /usr/bin/python3 chat_template_batch.py TOKREF_TOOLS_DIR BATCH.json OUT.json
BATCH.json: {"templates": {name: source}, "cases": [{"template": name, "context": {...}}]}
OUT.json:   [{"ok": true, "out": "..."} | {"ok": false, "error": "..."}] in case order.
"""
import json, sys

sys.path.insert(0, sys.argv[1])
import render_chat  # noqa: E402  (the reference environment: tojson, raise_exception, strftime_now)
from jinja2.ext import loopcontrols  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402


def main():
    batch = json.load(open(sys.argv[2], encoding="utf-8"))
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = render_chat.tojson
    env.globals["raise_exception"] = render_chat.raise_exception
    env.globals["strftime_now"] = render_chat.strftime_now
    compiled = {name: env.from_string(src) for name, src in batch["templates"].items()}
    out = []
    for case in batch["cases"]:
        try:
            out.append({"ok": True, "out": compiled[case["template"]].render(**case["context"])})
        except Exception as e:  # the test only compares whether both sides fail
            out.append({"ok": False, "error": type(e).__name__ + ": " + str(e)})
    with open(sys.argv[3], "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
