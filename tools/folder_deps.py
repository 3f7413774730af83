#!/usr/bin/env python3
"""Which folder of Sources/MessagesService uses which, found by the type names each folder
declares and the others mention; fails when two folders use each other (directly or through
others). `make validate` runs it; `--table` prints the table ARCHITECTURE.md shows.

A rough reader of Swift, on purpose: it knows declarations (`struct X`, `enum X`, `class X`,
`protocol X`, `actor X`, `typealias X`, top-level `func x(` and `let x`) and skips comments and
string literals; a name counts as used where it appears as a whole word."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources", "MessagesService")
DECLARATION = re.compile(
    r"^(?:public |internal |fileprivate |private |final |indirect |nonisolated(?:\(unsafe\))? )*"
    r"(?:struct|enum|class|protocol|actor|typealias)\s+([A-Z][A-Za-z0-9_]*)"
    r"|^(?:public |internal )?func ([a-z][A-Za-z0-9_]*)\s*[(<]"
    r"|^(?:public |internal )?let ([a-z][A-Za-z0-9_]*)\b",
    re.M,
)


def strip(source):
    """The source without comments and string literals (multi-line ones included)."""
    source = re.sub(r'"""[\s\S]*?"""', '""', source)
    source = re.sub(r"/\*[\s\S]*?\*/", "", source)
    source = re.sub(r"//[^\n]*", "", source)
    return re.sub(r'#?"(?:[^"\\\n]|\\.)*"#?', '""', source)


def folders():
    result = {}
    for folder in sorted(os.listdir(ROOT)):
        path = os.path.join(ROOT, folder)
        if not os.path.isdir(path) or folder == "Resources":
            continue
        files = []
        for directory, _, names in os.walk(path):
            files += [os.path.join(directory, n) for n in names if n.endswith(".swift")]
        result[folder] = [strip(open(f, encoding="utf-8").read()) for f in sorted(files)]
    return result


def graph():
    sources = folders()
    declared = {}
    for folder, texts in sources.items():
        for text in texts:
            # Only top-level declarations (no indentation) name what a folder offers.
            for match in DECLARATION.finditer(text):
                name = next(group for group in match.groups() if group)
                declared.setdefault(name, folder)
    uses = {folder: {} for folder in sources}
    for folder, texts in sources.items():
        words = set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", "\n".join(texts)))
        for name in words:
            owner = declared.get(name)
            if owner and owner != folder:
                uses[folder].setdefault(owner, set()).add(name)
    return uses


def cycles(uses):
    """Every pair of folders that reach each other."""
    def reach(start):
        seen, stack = set(), [start]
        while stack:
            for nxt in uses[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen
    reachable = {folder: reach(folder) for folder in uses}
    return sorted({tuple(sorted((a, b))) for a in uses for b in reachable[a] if a != b and a in reachable[b]})


def main():
    uses = graph()
    if "--table" in sys.argv:
        print("| folder | uses |\n|---|---|")
        for folder, used in sorted(uses.items()):
            print(f"| `{folder}` | {', '.join(f'`{u}`' for u in sorted(used)) or '—'} |")
    if "--why" in sys.argv:
        for folder, used in sorted(uses.items()):
            for other, names in sorted(used.items()):
                print(f"{folder} -> {other}: {', '.join(sorted(names))}")
    loops = cycles(uses)
    for a, b in loops:
        print(f"folder_deps: {a} and {b} use each other: {a} -> {b}: {', '.join(sorted(uses[a].get(b, ['(through others)'])))}; "
              f"{b} -> {a}: {', '.join(sorted(uses[b].get(a, ['(through others)'])))}", file=sys.stderr)
    return 1 if loops else 0


if __name__ == "__main__":
    sys.exit(main())
