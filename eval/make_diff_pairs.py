"""Build cross-check test pairs from any HTML document: the whole document printed to PDF (Chromium,
with its page headers and footers) against one chapter of it in Markdown with planted edits.

    python eval/make_diff_pairs.py SOURCE.html OUT_DIR [--chapter N] [--seed S]

Writes OUT_DIR/<stem>.pdf, OUT_DIR/<stem>-chN.md and OUT_DIR/pairs.json in the format of the
public crosscheck.json (`kb eval --crosscheck OUT_DIR/pairs.json --docs OUT_DIR`). The planted edits
are drawn at random from the chapter: a number changed, a requirement level weakened, a list item
removed, a table cell changed (where the chapter has them). Everything else in the Markdown is a
format-only difference from the PDF (markup, wrapping, page furniture, and the rest of the book).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kb.types import Block


def to_markdown(blocks: list[Block]) -> list[str]:
    """One Markdown chunk per block (headings keep their relative depth)."""
    out = []
    for b in blocks:
        if b.kind == "heading":
            out.append("#" * min(6, max(1, b.level)) + " " + b.text)
        elif b.kind == "list_item":
            marker = b.marker if b.marker and b.marker[0].isdigit() else "-"
            out.append("  " * b.level + f"{marker} {b.text}")
        elif b.kind == "table" and b.rows:
            rows = [[c.replace("|", "\\|").replace("\n", " ") for c in r] for r in b.rows]
            n = max(len(r) for r in rows)
            rows = [r + [""] * (n - len(r)) for r in rows]
            lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * n] + [
                "| " + " | ".join(r) + " |" for r in rows[1:]
            ]
            out.append("\n".join(lines))
        elif b.kind in ("code", "formula"):
            out.append("```\n" + b.text + "\n```")
        else:
            out.append(b.text)
    return out


def chapters(blocks: list[Block]) -> list[tuple[int, int]]:
    """(start, end) block ranges of the top-level chapters (the shallowest heading level used twice)."""
    levels = [b.level for b in blocks if b.kind == "heading"]
    best: list[tuple[int, int]] = [(0, len(blocks))]
    for top in sorted(set(levels)):
        starts = [i for i, b in enumerate(blocks) if b.kind == "heading" and b.level == top]
        chs = [(s, e) for s, e in zip(starts, [*starts[1:], len(blocks)], strict=True)]
        if len(chs) >= 3 and max(e - s for s, e in chs) < 0.5 * len(blocks):
            return chs
        best = chs or best
    return best


def plant(chunks: list[str], kinds: list[str], rng: random.Random) -> tuple[list[str], list[dict[str, str]]]:
    """Edit the chapter's Markdown chunks; returns them and the planted changes with exact quotes."""
    changes: list[dict[str, str]] = []
    used: set[int] = set()

    def pick(pred: object) -> int | None:
        cands = [i for i, c in enumerate(chunks) if i not in used and pred(i, c)]  # type: ignore[operator]
        return rng.choice(cands) if cands else None

    def window(text: str, at: int, n: int = 40) -> str:
        """Words around `at`, within its sentence."""
        dot = text.rfind(". ", 0, at)
        start = max(dot + 2 if dot >= 0 else 0, text.rfind(" ", 0, max(0, at - n)) + 1)
        end = min(x for x in (text.find(". ", at), text.find(" ", at + n), len(text)) if x >= 0)
        return text[start:end]

    i = pick(lambda i, c: kinds[i] == "paragraph" and re.search(r"(?<![\w.])\d{1,4}(?![\w.])", c))
    if i is not None:
        m = rng.choice(list(re.finditer(r"(?<![\w.])\d{1,4}(?![\w.])", chunks[i])))
        new = str(int(m.group()) * 2 + 1)
        v1 = window(chunks[i], m.start())
        chunks[i] = chunks[i][: m.start()] + new + chunks[i][m.end() :]
        changes.append({"id": "number", "kind": "number", "v1_text": v1, "v2_text": window(chunks[i], m.start())})
        used.add(i)
    i = pick(lambda i, c: kinds[i] in ("paragraph", "list_item") and re.search(r"\b(must|shall)\b", c))
    if i is not None:
        m = re.search(r"\b(must|shall)\b", chunks[i])
        assert m is not None
        v1 = window(chunks[i], m.start())
        chunks[i] = chunks[i][: m.start()] + "should" + chunks[i][m.end() :]
        changes.append(
            {"id": "level", "kind": "normative_strength", "v1_text": v1, "v2_text": window(chunks[i], m.start())}
        )
        used.add(i)
    i = pick(
        lambda i, c: kinds[i] == "list_item" and len(c) > 25 and i + 1 < len(kinds) and kinds[i + 1] == "list_item"
    )
    if i is not None:
        text = chunks[i].lstrip(" -0123456789.")
        changes.append({"id": "item", "kind": "removed_item", "v1_text": text[:80], "v2_text": ""})
        chunks[i] = ""
        used.add(i)
    i = pick(lambda i, c: kinds[i] == "paragraph" and len(c) > 120)
    if i is not None:
        words = chunks[i].split(" ")
        k = rng.randrange(3, len(words) - 3)
        if words[k].isalpha() and not any(w.endswith(".") for w in words[k - 3 : k + 3]):
            v1 = " ".join(words[k - 3 : k + 4])
            words[k] = "never" if words[k] != "never" else "always"
            chunks[i] = " ".join(words)
            changes.append({"id": "word", "kind": "text", "v1_text": v1, "v2_text": " ".join(words[k - 3 : k + 4])})
            used.add(i)
    return chunks, changes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--chapter", type=int, default=-1, help="which chapter (default: the longest)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()

    from ingest.formats import parse_file
    from kb.settings import Settings

    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.source.stem
    pdf = args.out / f"{stem}.pdf"
    subprocess.run(
        [
            args.chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--print-to-pdf={pdf}",
            str(args.source.resolve()),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    parsed = parse_file(args.source, Settings())
    blocks = list(parsed.blocks)
    chs = chapters(blocks)
    k = args.chapter if args.chapter >= 0 else max(range(len(chs)), key=lambda j: chs[j][1] - chs[j][0])
    s, e = chs[k]
    part = blocks[s:e]
    chunks, changes = plant(to_markdown(part), [b.kind for b in part], random.Random(args.seed))
    md = args.out / f"{stem}-ch{k}.md"
    md.write_text("\n\n".join(c for c in chunks if c) + "\n", encoding="utf-8")
    pair = {
        "description": f"{pdf.name} (whole document, PDF) against chapter {k} of it in Markdown with planted edits",
        "v1": {"doc": pdf.name},
        "v2": {"doc": md.name},
        "changes": changes,
    }
    (args.out / "pairs.json").write_text(json.dumps(pair, indent=1, ensure_ascii=False))
    print(f"wrote {pdf}, {md} ({len(part)} blocks of {len(blocks)}), {args.out / 'pairs.json'}: {len(changes)} edits")


if __name__ == "__main__":
    main()
