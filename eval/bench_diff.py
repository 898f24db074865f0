"""How long `kb diff` takes on two long documents (default: two 200-page specs, ~3,000 characters a page).

Generates a synthetic specification (numbered chapters and sections, requirement sentences with values
and units, lists, tables), a revision of it with planted edits (values, MUST/SHOULD, removed items,
changed cells, a moved section, renumbering), ingests both render-only into a scratch store, then
times the diff as `kb diff` runs it (manifests read, units built, aligned, compared) and reports how
many planted edits it found and how many other changes it reported.

    python eval/bench_diff.py [--pages 200] [--keep DIR]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = [
    "client",
    "server",
    "request",
    "response",
    "token",
    "session",
    "payment",
    "account",
    "ledger",
    "batch",
    "queue",
    "worker",
    "retry",
    "timeout",
    "limit",
    "quota",
    "region",
    "replica",
    "snapshot",
    "backup",
    "archive",
    "index",
    "cache",
    "entry",
    "record",
    "field",
    "value",
    "header",
    "body",
    "signature",
    "certificate",
    "key",
    "rotation",
    "audit",
    "event",
    "message",
    "channel",
    "stream",
    "partition",
    "offset",
    "commit",
]
VERBS = [
    "stores",
    "sends",
    "rejects",
    "accepts",
    "validates",
    "signs",
    "encrypts",
    "retries",
    "logs",
    "returns",
    "keeps",
    "drops",
]
UNITS = ["ms", "s", "MB", "GB", "requests", "items", "%"]
LEVELS = ["MUST", "SHOULD", "MAY", "MUST NOT", "SHOULD NOT"]


def sentence(rng: random.Random) -> str:
    a, b, c = rng.sample(WORDS, 3)
    form = rng.random()
    if form < 0.35:
        return f"The {a} {rng.choice(LEVELS)} {rng.choice(VERBS)} the {b} {c} within {rng.randint(1, 9999)} {rng.choice(UNITS)}."
    if form < 0.6:
        return f"Each {a} {rng.choice(VERBS)} at most {rng.randint(2, 500)} {b} entries per {c}."
    return f"When the {a} {rng.choice(VERBS)} a {b}, the {c} {rng.choice(VERBS)} the {rng.choice(WORDS)} and the {rng.choice(WORDS)}."


def make_spec(pages: int, seed: int) -> list[tuple[str, list[str]]]:
    """Sections as (title, markdown blocks)."""
    rng = random.Random(seed)
    sections = []
    chars = 0
    n = 0
    while chars < pages * 3000:
        n += 1
        blocks: list[str] = []
        for _ in range(rng.randint(2, 4)):
            blocks.append(" ".join(sentence(rng) for _ in range(rng.randint(2, 5))))
        if rng.random() < 0.4:
            blocks.append(
                "\n".join(f"- the {rng.choice(WORDS)} {rng.choice(WORDS)} {k}" for k in range(rng.randint(3, 6)))
            )
        if rng.random() < 0.25:
            rows = [
                f"| {rng.choice(WORDS)}-{k} | {rng.randint(1, 999)} {rng.choice(UNITS)} |"
                for k in range(rng.randint(3, 8))
            ]
            blocks.append("| setting | default |\n|---|---|\n" + "\n".join(rows))
        title = f"{' '.join(w.capitalize() for w in rng.sample(WORDS, 2))} {n}"
        sections.append((title, blocks))
        chars += sum(len(b) for b in blocks)
    return sections


def revise(spec: list[tuple[str, list[str]]], edits: int, seed: int) -> tuple[list[tuple[str, list[str]]], int]:
    rng = random.Random(seed)
    out = [(t, list(b)) for t, b in spec]
    planted = 0
    for _ in range(edits):
        _title, blocks = rng.choice(out)
        k = rng.randrange(len(blocks))
        b = blocks[k]
        if " MUST " in b and rng.random() < 0.5:
            blocks[k] = b.replace(" MUST ", " SHOULD ", 1)
        elif "at most " in b:
            i = b.index("at most ") + 8
            j = b.index(" ", i)
            blocks[k] = b[:i] + str(int(b[i:j]) + 1) + b[j:]
        elif b.startswith("- "):
            lines = b.split("\n")
            lines.pop(rng.randrange(len(lines)))
            blocks[k] = "\n".join(lines)
        else:
            continue
        planted += 1
    out.append(out.pop(len(out) // 3))  # a moved section
    return out, planted


def write(spec: list[tuple[str, list[str]]], path: Path, offset: int) -> None:
    parts = ["# Synthetic Service Specification", ""]
    for i, (title, blocks) in enumerate(spec, 1):
        parts += [f"## {i + offset}. {title}", ""]
        for b in blocks:
            parts += [b, ""]
    path.write_text("\n".join(parts), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--edits", type=int, default=60)
    ap.add_argument("--keep", type=Path, help="keep the generated files and store here")
    args = ap.parse_args()

    from kb.compare.report import compare
    from kb.compare.resolve import resolve_document
    from kb.service import KnowledgeBase
    from kb.settings import Settings

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-diff-"))
    root.mkdir(parents=True, exist_ok=True)
    spec = make_spec(args.pages, 1)
    rev, planted = revise(spec, args.edits, 2)
    a, b = root / "spec-v1.md", root / "spec-v2.md"
    write(spec, a, 0)
    write(rev, b, 1)  # renumbered too
    settings = Settings(data_dir=root / "data", clip_model="", text_model="")
    kb = KnowledgeBase(settings)
    t0 = time.perf_counter()
    res = kb.ingest([a, b], index=False)
    ingest_s = time.perf_counter() - t0
    assert all(r.status != "failed" for r in res), [r.error for r in res]
    t0 = time.perf_counter()
    cmp = compare(resolve_document(kb.catalog, str(a)), resolve_document(kb.catalog, str(b)))
    diff_s = time.perf_counter() - t0
    r = cmp.result
    kinds: dict[str, int] = {}
    for c in r.changes:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    chars = sum(len(s.text) for s in kb.get(a.name).sections)
    print(f"documents: 2 x {args.pages} pages ({chars / 1e3:.0f}k characters, {len(cmp.view_a.units)} units each)")
    print(f"ingest (render only, both): {ingest_s:.1f} s")
    print(f"diff: {diff_s:.2f} s  (target < 10 s)")
    print(f"planted edits: {planted} (+1 moved section); reported changes: {len(r.changes)} {kinds}")
    print(f"only in A: {len(r.only_in_a)}  only in B: {len(r.only_in_b)}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
