#!/usr/bin/python3
"""Checks that no #include in src/ points up the layer order (docs/architecture.md, "Layers").

usage: /usr/bin/python3 scripts/check_layers.py [ROOT]     (ROOT: the repository, default: this one)

Every folder of src/safekey/ is a room with a rank (LAYERS below, lowest first). A file may include
headers of its own room and of rooms of a LOWER rank; rooms of the same rank are peers and do not
include each other. `#include "safekey/<file>.h"` without a room is the `safekey` program's own
folder (apps/safekey), above everything in src/. Inside a room, the components (a .h/.cpp pair,
named by its path without the extension) must not include each other in a cycle: the room then has
no order in which it could be read or built bottom-up. A room folder that LAYERS does not name is an
error too, so a new room is placed on purpose.

Prints one line per violation, `file:line: from -> to (why)`, and exits 1 when there is any.
"""
import os
import re
import sys

# Lowest first; rooms in one tuple are peers.
LAYERS = [
    ("util",),
    ("io", "net", "config"),  # config: option schemas and config files (includes util only)
    ("text",),
    ("data",),
    ("tensor",),
    ("lora", "dist"),
    ("model",),
    ("train", "infer"),
    ("eval", "serve", "analyze", "world"),
    ("demo",),
]
APPS = "apps"  # apps/safekey: includes anything; nothing in src/ includes it

# Include cycles between components of one room that are tolerated until they are untangled:
# (from component, to component) arrows that the cycle check ignores. Keep it empty: a cycle is
# broken by moving the shared types into a header of their own (infer/request.h, eval/bench_item.h).
ALLOWED_ARROWS = set()  # none today

INCLUDE = re.compile(r'^\s*#\s*include\s*"safekey/([^"]+)"')


def rank_table():
    ranks = {}
    for r, rooms in enumerate(LAYERS):
        for room in rooms:
            ranks[room] = r
    ranks[APPS] = len(LAYERS)
    return ranks


def order_text():
    return " < ".join(",".join(rooms) for rooms in LAYERS) + " < " + APPS


def scan(root):
    """Yields (relative file path, line number, from room, from component, to room, to component)."""
    base = os.path.join(root, "src", "safekey")
    for dirpath, _, files in os.walk(base):
        for name in sorted(files):
            if not name.endswith((".h", ".cpp", ".hpp", ".cc")):
                continue
            path = os.path.join(dirpath, name)
            rel_to_base = os.path.relpath(path, base).replace(os.sep, "/")
            room = rel_to_base.split("/")[0] if "/" in rel_to_base else ""
            comp = os.path.splitext(rel_to_base)[0]
            with open(path, encoding="utf-8", errors="replace") as f:
                for ln, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = m.group(1)
                    to_room = target.split("/")[0] if "/" in target else APPS
                    yield (os.path.relpath(path, root).replace(os.sep, "/"), ln, room, comp, to_room,
                           os.path.splitext(target)[0])


def find_cycles(edges):
    """edges: {component: {component}} -> list of cycles (lists of components), one per strongly
    connected component with more than one member (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(sorted(scc))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def check(root):
    ranks = rank_table()
    problems = []
    base = os.path.join(root, "src", "safekey")
    if not os.path.isdir(base):
        return ["%s: no src/safekey folder" % root]
    for entry in sorted(os.listdir(base)):
        if os.path.isdir(os.path.join(base, entry)) and entry not in ranks:
            problems.append("src/safekey/%s: room not placed in the layer order (add it to LAYERS in "
                            "scripts/check_layers.py and to docs/architecture.md)" % entry)
    edges, where = {}, {}
    for rel, ln, room, comp, to_room, to_comp in scan(root):
        if room not in ranks or room == APPS:
            continue  # reported above (or a file directly in src/safekey)
        arrow = "%s:%d: %s -> %s" % (rel, ln, room, to_room)
        if to_room not in ranks:
            problems.append("%s (no room '%s' in the layer order)" % (arrow, to_room))
        elif to_room != room and ranks[to_room] >= ranks[room]:
            why = "a peer" if ranks[to_room] == ranks[room] else "a higher layer"
            problems.append("%s (%s; the order is %s)" % (arrow, why, order_text()))
        elif to_room == room and to_comp != comp:
            edges.setdefault(comp, set()).add(to_comp)
            where.setdefault((comp, to_comp), "%s:%d" % (rel, ln))
    # Cycles inside a room, ignoring the tolerated arrows.
    kept = {a: {b for b in bs if (a, b) not in ALLOWED_ARROWS} for a, bs in edges.items()}
    for cyc in find_cycles(kept):
        members = set(cyc)
        for (a, b), loc in sorted(where.items()):
            if a in members and b in members and (a, b) not in ALLOWED_ARROWS:
                problems.append("%s: %s -> %s (include cycle inside room '%s' among %s)"
                                % (loc, a, b, a.split("/")[0], ", ".join(cyc)))
    return problems


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print("check_layers: %d include(s) against the layer order (%s)" % (len(problems), order_text()))
        return 1
    print("check_layers: ok (%s)" % order_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
