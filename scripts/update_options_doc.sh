#!/usr/bin/env bash
# Regenerates the options table of docs/training.md from the training option table
# (src/safekey/train/options.cpp): the text between the `<!-- options:begin` and `<!-- options:end -->`
# markers becomes the output of `safekey train --print-options-markdown`.
# tests/train/options_test.cpp (TrainOptions.DocsTableIsTheGeneratedOne) fails when they differ.
# Usage: scripts/update_options_doc.sh [path/to/safekey]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SK=${1:-$ROOT/build/release/safekey}
DOC=$ROOT/docs/training.md
table=$(mktemp)
trap 'rm -f "$table"' EXIT
"$SK" train --print-options-markdown >"$table"
/usr/bin/env python3 - "$DOC" "$table" <<'PY'
import sys
doc_path, table_path = sys.argv[1], sys.argv[2]
doc = open(doc_path, encoding="utf-8").read()
table = open(table_path, encoding="utf-8").read()
begin = doc.index("<!-- options:begin")
body = doc.index("\n", begin) + 1
end = doc.index("<!-- options:end -->")
open(doc_path, "w", encoding="utf-8").write(doc[:body] + table + doc[end:])
PY
echo "updated $DOC"
