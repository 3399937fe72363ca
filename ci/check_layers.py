#!/usr/bin/env python3
"""Checks every #include "..." of a C tree against its layer file.

Usage: check_layers.py [ROOT]   (default: the repository this script is in)

ROOT/ci/layers.txt names the layers (lowest first), their folders, the
layers below each, and their public headers; then the folders that are not
layers and what they may include. A file of a layer may include the headers
of its own folder and the public headers of the layers below it; anything
else (an upward include, another layer's internal header, a folder the file
names nowhere) is reported with file:line, and the exit status is 1.
Every C file under ROOT must be in a layer or a listed folder.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SKIP_DIRS = {"build", "node_modules", ".git"}


class Layer:
    def __init__(self, name, folder, prefix, below, public):
        self.name, self.folder, self.prefix = name, folder, prefix
        self.below, self.public = below, public


def read_layers(path):
    layers, folders = {}, {}
    order = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            if "/" not in line[0]:  # a layer (a folder row names a path)
                name, folder, prefix, below = line[0], line[1], line[2], line[3]
                rest = line[4:]
                # "below" may name several layers: they run up to the first header.
                bel = [] if below == "-" else [below]
                while rest and not rest[0].endswith(".h"):
                    bel.append(rest.pop(0))
                for b in bel:
                    if b not in layers:
                        sys.exit(f"{path}:{n}: layer {name}: {b} is not a layer above it in the file")
                layers[name] = Layer(name, folder.rstrip("/"),
                                     "" if prefix == "-" else prefix, bel, rest)
                order.append(name)
            else:
                folders[line[0].rstrip("/")] = line[1:]
    # Transitive closure of "below".
    for name in order:
        lay, seen, todo = layers[name], set(), list(layers[name].below)
        while todo:
            b = todo.pop()
            if b not in seen:
                seen.add(b)
                todo.extend(layers[b].below)
        lay.below = seen
    return layers, folders


def c_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        # A folder with its own ci/layers.txt is another tree (a test fixture).
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not os.path.isfile(
            os.path.join(dirpath, d, "ci", "layers.txt")))
        for fn in sorted(filenames):
            if fn.endswith((".c", ".h")):
                yield os.path.relpath(os.path.join(dirpath, fn), root)


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    layers, folders = read_layers(os.path.join(root, "ci", "layers.txt"))
    by_folder = {lay.folder: lay for lay in layers.values()}
    exists = lambda p: os.path.isfile(os.path.join(root, p))
    norm = os.path.normpath

    def layer_of(path):
        return by_folder.get(os.path.dirname(path))

    def public_candidates(inc):
        for lay in layers.values():
            if inc.startswith(lay.prefix) and inc[len(lay.prefix):] in lay.public:
                p = f"{lay.folder}/{inc[len(lay.prefix):]}"
                if exists(p):
                    yield lay, p

    def is_public(path):
        lay = layer_of(path)
        return lay is not None and os.path.basename(path) in lay.public

    errors = []
    for path in c_files(root):
        folder = os.path.dirname(path)
        me = layer_of(path)
        rules = folders.get(folder)
        if me is None and rules is None:
            errors.append(f"{path}: folder {folder or '.'} is not in ci/layers.txt")
            continue
        with open(os.path.join(root, path), errors="replace") as f:
            text = f.read()
        for m in INCLUDE.finditer(text):
            inc = m.group(1)
            line = text.count("\n", 0, m.start()) + 1
            where = f"{path}:{line}: #include \"{inc}\""
            own = norm(os.path.join(folder, inc))
            if exists(own) and os.path.dirname(own) == folder:
                continue  # a header of its own folder
            if me is not None:
                cands = list(public_candidates(inc))
                if any(lay.name in me.below for lay, _ in cands):
                    continue
                if cands:
                    errors.append(f"{where}: {cands[0][0].name} is not below {me.name}")
                else:
                    errors.append(f"{where}: not a public header of a layer below {me.name}")
                continue
            # A folder that is not a layer: its rules say what it may include.
            ok = False
            search = []
            for r in rules:
                if r.startswith("internal:"):
                    lay = layers[r.split(":", 1)[1]]
                    search.append((norm(os.path.join(lay.folder, inc)), "internal", lay))
                    # Spelt from the repository root or from engineio/ ("http/x.h").
                    for base in ("", "engineio"):
                        p = norm(os.path.join(base, inc))
                        if os.path.dirname(p) == lay.folder:
                            search.append((p, "internal", lay))
                elif r == "lib":
                    search.append((norm(os.path.join("tests/lib", inc)), "lib", None))
                elif r not in ("public", "own"):
                    search.append((norm(os.path.join(r, inc)), "folder", None))
                    search.append((norm(os.path.join(folder, inc)), "folder", None))
            for p, kind, lay in search:
                if exists(p) and (kind != "folder" or os.path.dirname(p) in rules):
                    ok = True
                    break
            if not ok and ("public" in rules or any(r.startswith("internal:") for r in rules)):
                ok = any(True for _ in public_candidates(inc))
                if not ok:  # a public header spelt from the root ("socketio/packet.h")
                    p = norm(inc)
                    ok = exists(p) and is_public(p)
            if not ok:
                errors.append(f"{where}: not allowed for {folder} by ci/layers.txt ({' '.join(rules)})")
    for e in errors:
        print(e)
    if errors:
        print(f"check_layers: {len(errors)} include(s) against ci/layers.txt", file=sys.stderr)
        return 1
    print(f"check_layers: every include of {root} follows ci/layers.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
