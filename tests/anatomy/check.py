#!/usr/bin/env python3
"""The workspace's anatomy rules (issue 18, docs/architecture.md § Layout), checked on the source text.

1. Event subjects are spelled only in the event catalogue (`proto/src/events.rs`): no `"id77.<service>..."` literal,
   no `SUBJECT_` constant and no dispatch on a subject string anywhere else in non-test code.
2. `outbox::enqueue` is called only from a service's orchestration module (`flow.rs` or `flow/`).
3. No function of a gRPC module (`grpc.rs`, `grpc/`: handlers and their helpers) is longer than 40 lines.
4. No import circle between the modules (files) of a crate; no source file (outside tests/) over 800 lines.
5. `ServiceError::new(` only inside the platform crate.
6. The README and docs link nothing outside the repository.
7. The partners' library (`id77-referral-consumer`) depends on no sqlx, axum or tonic crate.

Usage: check.py [--no-cargo]. Exits 1 and lists every finding."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CATALOGUE = {"proto/src/events.rs"}
# Where typed dispatch is implemented (`Event::decode_as` compares the subject with `E::SUBJECT`).
TYPED_DISPATCH = {"services/platform/src/consumer.rs"}
MAX_FILE_LINES = 800
MAX_HANDLER_LINES = 40

SUBJECT_LITERAL = re.compile(r'"id77\.(membership|catalogue|requests|routing|billing|referrals|deadletter)(\.(?!v1")|[">])')
SUBJECT_CONST = re.compile(r"\b(pub\s+)?(const|static)\s+SUBJECT_\w*")
SUBJECT_DISPATCH = re.compile(r"\.subject(\.as_str\(\))?\s*(==|!=)|match\s+[\w.]*subject[\w.()]*\s*\{|\.subject\.(starts_with|ends_with)\(")


def rel(path):
    return os.path.relpath(path, ROOT)


def rust_files():
    for base in ("proto", "services", "tests", "bench"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, base)):
            dirnames[:] = [d for d in dirnames if d not in ("target", "node_modules")]
            for f in filenames:
                if f.endswith(".rs"):
                    yield os.path.join(dirpath, f)


def is_test_file(path):
    r = rel(path)
    parts = r.split(os.sep)
    # Integration tests, the e2e crate, benches, examples, test helpers.
    return (
        "tests" in parts[1:]
        or parts[0] in ("tests", "bench")
        or "examples" in parts
        or "benches" in parts
        or parts[-1] in ("testing.rs", "tests.rs")
        or parts[-1].endswith("_tests.rs")
        or "testing" in parts
    )


def strip_tests(text):
    """The file without its `#[cfg(test)]` modules (they sit at the end, by convention)."""
    m = re.search(r"^#\[cfg\(test\)\]\s*\n\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text, re.M)
    return text[: m.start()] if m else text


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def block_end(text, open_idx):
    """Index of the brace closing the one at open_idx (strings and chars are skipped roughly)."""
    depth = 0
    i = open_idx
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "r" and text.startswith('r#"', i):
            end = text.find('"#', i + 3)
            i = end + 1 if end >= 0 else n
        elif c == "'" and i + 2 < n and (text[i + 2] == "'" or text[i + 1] == "\\"):
            i = text.find("'", i + 2 if text[i + 1] != "\\" else i + 3)
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return n - 1


findings = []


def find(rule, path, line, what):
    findings.append(f"{rule}: {rel(path)}:{line}: {what}")


def line_of(text, idx):
    return text.count("\n", 0, idx) + 1


def check_subjects_and_errors(path, code):
    r = rel(path)
    in_platform = r.startswith("services/platform/")
    streams_def = r in CATALOGUE
    for i, line in enumerate(code.split("\n"), 1):
        if not streams_def:
            if SUBJECT_LITERAL.search(line):
                find("subject-literal", path, i, line.strip())
            if SUBJECT_CONST.search(line):
                find("subject-const", path, i, line.strip())
            if SUBJECT_DISPATCH.search(line) and r not in TYPED_DISPATCH:
                find("subject-dispatch", path, i, line.strip())
        if "ServiceError::new(" in line and not in_platform:
            find("service-error-new", path, i, line.strip())
        if re.search(r"\boutbox::enqueue\b|\benqueue\(", line) and not in_platform:
            parts = r.split(os.sep)
            if not ("flow.rs" in parts or "flow" in parts):
                find("enqueue-outside-flow", path, i, line.strip())


def check_handlers(path, code):
    """Every function of a gRPC module (`grpc.rs` or `grpc/`): the handlers and the helpers they call."""
    parts = rel(path).split(os.sep)
    if not ("grpc.rs" in parts or "grpc" in parts[:-1]) or rel(path).startswith("services/platform/"):
        return  # the platform's grpc.rs is the server's bootstrap, not handlers
    for f in re.finditer(r"\bfn (\w+)(?:<[^>]*>)?\s*\([^{;]*\{", code):
        fend = block_end(code, f.end() - 1)
        lines = line_of(code, fend) - line_of(code, f.start()) + 1
        if lines > MAX_HANDLER_LINES:
            find("long-handler", path, line_of(code, f.start()), f"{f.group(1)} is {lines} lines (max {MAX_HANDLER_LINES})")


# ---- module graph -------------------------------------------------------------------------------------------

def crate_roots():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in ("target", "node_modules", ".git", "fuzz", ".cache")]
        if "Cargo.toml" in filenames and os.path.isdir(os.path.join(dirpath, "src")):
            for root in ("lib.rs", "main.rs"):
                p = os.path.join(dirpath, "src", root)
                if os.path.exists(p):
                    yield p


def module_tree(root_file):
    """{module path tuple: file} for the files reachable by `mod x;` from a crate root."""
    modules = {(): root_file}
    stack = [((), root_file)]
    while stack:
        mpath, f = stack.pop()
        text = strip_comments(strip_tests(open(f, encoding="utf-8").read()))
        base = os.path.dirname(f) if os.path.basename(f) in ("lib.rs", "main.rs", "mod.rs") else f[:-3]
        for m in re.finditer(r"^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, re.M):
            name = m.group(1)
            for cand in (os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")):
                if os.path.exists(cand):
                    modules[mpath + (name,)] = cand
                    stack.append((mpath + (name,), cand))
                    break
    return modules


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    tree = re.sub(r"\s+", "", tree)
    i = tree.find("{")
    if i < 0:
        return [tree.split(" as ")[0]]
    prefix, inner = tree[:i], tree[i + 1 : tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for c in inner:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += c == "{"
        depth -= c == "}"
        cur += c
    parts.append(cur)
    out = []
    for p in parts:
        if p:
            out += [prefix + e for e in expand_use(p)]
    return out


def resolve(mpath, segs, modules):
    """The deepest module a path names, from module mpath; None if outside the crate."""
    if not segs:
        return None
    if segs[0] == "crate":
        cur, segs = (), segs[1:]
    elif segs[0] in ("self", "super"):
        cur = mpath
        while segs and segs[0] in ("self", "super"):
            if segs[0] == "super":
                cur = cur[:-1]
            segs = segs[1:]
    elif mpath + (segs[0],) in modules:
        cur = mpath
    else:
        return None
    best = cur
    for s in segs:
        if cur + (s,) in modules:
            cur = cur + (s,)
            best = cur
        else:
            break
    return best


def check_circles(root_file):
    modules = module_tree(root_file)
    edges = {m: set() for m in modules if m}
    for mpath, f in modules.items():
        if not mpath:
            continue
        text = strip_comments(strip_tests(open(f, encoding="utf-8").read()))
        paths = []
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            paths += expand_use(m.group(1))
        for m in re.finditer(r"\b((?:crate|super|self|[a-z_][a-z0-9_]*)(?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
            paths.append(m.group(1))
        for p in paths:
            target = resolve(mpath, [s for s in p.split("::") if s], modules)
            if target and target != mpath and target in edges:
                edges[mpath].add(target)
    # Tarjan's strongly connected components.
    index, low, on, stack, sccs = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    for comp in sccs:
        names = sorted(rel(modules[m]) for m in comp)
        findings.append(f"import-circle: {rel(root_file)}: " + " <-> ".join(names))


def check_docs():
    for base in ("README.md", "docs"):
        p = os.path.join(ROOT, base)
        files = [p] if os.path.isfile(p) else [os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs]
        for f in files:
            if not f.endswith((".md", ".yaml")):
                continue
            for i, line in enumerate(open(f, encoding="utf-8"), 1):
                if "../shared" in line or "DESIGN.md" in line:
                    find("outside-link", f, i, line.strip())


def check_partner_library():
    out = subprocess.run(
        ["cargo", "tree", "-p", "id77-referral-consumer", "-e", "normal", "--prefix", "none", "--format", "{p}"],
        cwd=ROOT, capture_output=True, text=True,
    )
    if out.returncode != 0:
        findings.append(f"partner-library: cargo tree failed: {out.stderr.strip()[:500]}")
        return
    crates = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
    for bad in sorted(c for c in crates if c.startswith(("sqlx", "axum", "tonic"))):
        findings.append(f"partner-library: id77-referral-consumer depends on {bad}")


def main():
    for path in rust_files():
        if is_test_file(path):
            continue
        text = open(path, encoding="utf-8").read()
        code = strip_tests(text)
        lines = text.count("\n")
        if lines > MAX_FILE_LINES:
            find("long-file", path, 1, f"{lines} lines (max {MAX_FILE_LINES}; move unit tests to a `tests.rs` beside it)")
        code_nc = strip_comments(code)
        check_subjects_and_errors(path, code_nc)
        check_handlers(path, code_nc)
    for root in crate_roots():
        check_circles(root)
    check_docs()
    if "--no-cargo" not in sys.argv:
        check_partner_library()
    for f in findings:
        print(f)
    kinds = {}
    for f in findings:
        kinds[f.split(":")[0]] = kinds.get(f.split(":")[0], 0) + 1
    print(f"anatomy: {len(findings)} findings " + (str(kinds) if kinds else "(all rules hold)"))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
