#!/usr/bin/python3
"""scripts/check_layers.py can fail: on a copy of src/ with one injected include that points up the
layer order (text -> model), one between peers (eval -> serve), one to a room the order does not
name, and one that closes a cycle inside a room (model/kv_cache -> model/decoder), it exits 1 and
names each file:line with its arrow; the unmodified copy passes. A checker that only looked at
headers, ignored .cpp files, compared room names instead of ranks, or never failed is caught here.

usage: /usr/bin/python3 tests/scripts/check_layers_test.py [REPO]
"""
import os
import shutil
import subprocess
import sys
import tempfile

REPO = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "check_layers.py")


def run(root):
    p = subprocess.run([sys.executable, SCRIPT, root], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    return p.returncode, p.stdout


def inject(root, rel, line):
    """Appends `line` to the file; returns its line number."""
    path = os.path.join(root, rel)
    with open(path, encoding="utf-8") as f:
        n = sum(1 for _ in f)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
    return n + 1


def main():
    failures = []
    with tempfile.TemporaryDirectory(prefix="check_layers_") as tmp:
        shutil.copytree(os.path.join(REPO, "src"), os.path.join(tmp, "src"))
        rc, out = run(tmp)
        if rc != 0:
            failures.append("the unmodified tree fails:\n" + out)
        cases = [
            ("src/safekey/text/tokenizer.cpp", '#include "safekey/model/decoder.h"', "text -> model"),
            ("src/safekey/eval/judges.h", '#include "safekey/serve/server.h"', "eval -> serve"),
            ("src/safekey/util/file.cpp", '#include "safekey/cli.h"', "util -> apps"),
            ("src/safekey/data/records.cpp", '#include "safekey/nowhere/thing.h"', "data -> nowhere"),
            ("src/safekey/model/kv_cache.cpp", '#include "safekey/model/decoder.h"', "model/kv_cache -> model/decoder"),
        ]
        expected = []
        for rel, line, arrow in cases:
            ln = inject(tmp, rel, line)
            expected.append("%s:%d: %s" % (rel, ln, arrow))
        os.makedirs(os.path.join(tmp, "src", "safekey", "newroom"))
        rc, out = run(tmp)
        print(out, end="")
        if rc != 1:
            failures.append("exit code %d with upward includes (want 1)" % rc)
        for e in expected:
            if e not in out:
                failures.append("no line starting '%s' in the output" % e)
        if "src/safekey/newroom: room not placed in the layer order" not in out:
            failures.append("the unplaced room src/safekey/newroom is not reported")
    for f in failures:
        print("FAIL:", f)
    print("check_layers_test:", "FAILED" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
