"""Parse + section the public eval docs; check every evidence quote lies inside one section.

A quote counts when its normalised text (verify.py's norm: NFKC, curly->straight quotes, casefold,
whitespace collapsed) occurs in the normalised text of one section of the right document and,
for PDFs, that section's page span includes the evidence page.

    .venv/bin/python eval/check_quotes.py [--eval-dir ../shared/eval/public] [-v]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.formats import parse_file
from ingest.sections import build_sections
from kb.settings import Settings
from kb.types import Section

_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
    }
)


def norm(s: str) -> str:
    s = unicodedata.normalize("NFKC", s).translate(_QUOTES).casefold()
    return re.sub(r"\s+", " ", s).strip()


def main() -> int:
    default_dir = Path(__file__).resolve().parents[2] / "shared" / "eval" / "public"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval-dir", type=Path, default=default_dir)
    ap.add_argument("-v", "--verbose", action="store_true", help="print every section heading path")
    args = ap.parse_args()

    settings = Settings(data_dir=Path("/tmp/kb_check_quotes"))
    docs_dir = args.eval_dir / "docs"
    sections: dict[str, list[Section]] = {}
    print(f"{'document':40} {'blocks':>6} {'sections':>8} {'secs':>6}  title")
    for path in sorted(docs_dir.iterdir()):
        t = time.perf_counter()
        parsed = parse_file(path, settings)
        secs = build_sections(path.name, parsed)
        sections[path.name] = secs
        print(f"{path.name:40} {len(parsed.blocks):6} {len(secs):8} {time.perf_counter() - t:6.1f}  {parsed.title}")
        if args.verbose:
            for s in secs:
                pages = f" p{s.page_start}-{s.page_end}" if s.page_start else ""
                print(f"    [{s.ordinal}] {s.heading_label}{pages} ({len(s.text)} chars, {','.join(s.kinds)})")

    total = found = strict = 0
    for line in (args.eval_dir / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        q = json.loads(line)
        for ev in q["evidence"]:
            total += 1
            quote = norm(ev["quote"])
            hits = [s for s in sections.get(ev["doc"], []) if quote in norm(s.text)]
            ok_page = [
                s for s in hits if s.page_start is None or (s.page_start <= ev["page"] <= (s.page_end or s.page_start))
            ]
            found += bool(hits)
            strict += bool(ok_page)
            if not ok_page:
                why = "page span" if hits else "not in one section"
                print(f"MISS {q['id']} {ev['doc']} p{ev['page']} ({why}): {ev['quote']}")
    print(f"quotes inside one section of the right doc: {found}/{total}; with PDF page in span: {strict}/{total}")
    return 0 if strict == total else 1


if __name__ == "__main__":
    sys.exit(main())
