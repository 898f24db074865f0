"""Structure fidelity on real PDFs: the share of outline (bookmark) headings that a section names, on the
right page (±1).

A heading counts as named when some section lists it in its heading_path or its headings (titles compared
by letters and digits only, a leading section number optional) and that section's page span, widened by
one page each side, holds the outline entry's target page.

    python eval/structure_check.py [PDF or folder ...]      (default: the corpus of eval/corpus/fetch_pdfs.sh)
    python eval/structure_check.py --misses 10 eval/corpus/pdfs    # also list a few missed headings
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.formats.pdf_fast import open_pdf
from ingest.formats.pdf_outline import _NUMBERED, OutlineEntry, match_key, read_outline

DEFAULT = Path(__file__).resolve().parent / "corpus" / "pdfs"


def _keys(text: str) -> set[str]:
    """The heading's key, and its key without a leading section number."""
    out = {match_key(text)}
    m = _NUMBERED.match(text)
    if m:
        out.add(match_key(text[m.end() :]))
    return {k for k in out if k}


def check(path: Path) -> tuple[int, int, list[OutlineEntry], int, float]:
    """(named, outline entries with a page, missed entries, pages, parse seconds)."""
    from ingest.formats import parse_file
    from ingest.sections import build_sections
    from kb.settings import Settings

    doc = open_pdf(path)
    try:
        entries, _ = read_outline(doc, len(doc))  # type: ignore[arg-type]
    finally:
        doc.close()  # type: ignore[attr-defined]
    entries = [e for e in entries if e.page is not None]
    t0 = time.perf_counter()
    parsed = parse_file(path, Settings(data_dir=Path("/nonexistent-kb-structure-check")))
    secs = build_sections(path.stem, parsed)
    dt = time.perf_counter() - t0
    spans: list[tuple[set[str], int, int]] = []
    for s in secs:
        if s.page_start is None:
            continue
        names: set[str] = set()
        for h in (*s.heading_path, *s.headings):
            names |= _keys(h)
        spans.append((names, s.page_start - 1, (s.page_end or s.page_start) + 1))
    named = 0
    missed: list[OutlineEntry] = []
    for e in entries:
        want = _keys(e.title)
        page = e.page or 0
        if any(want & names and lo <= page <= hi for names, lo, hi in spans):
            named += 1
        else:
            missed.append(e)
    return named, len(entries), missed, parsed.pages or 0, dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", type=Path, default=[DEFAULT])
    ap.add_argument("--misses", type=int, default=0, help="list up to N missed headings per document")
    args = ap.parse_args()
    files: list[Path] = []
    for p in args.paths:
        files.extend(sorted(p.glob("*.pdf")) if p.is_dir() else [p])
    if not files:
        print(f"no PDFs found in {', '.join(map(str, args.paths))}; run eval/corpus/fetch_pdfs.sh first")
        return 2
    total_named = total = total_pages = 0
    total_s = 0.0
    print(f"{'document':<28} {'pages':>5} {'outline':>7} {'named':>6} {'share':>6} {'parse p/s':>9}")
    for f in files:
        named, n, missed, pages, dt = check(f)
        total_named += named
        total += n
        total_pages += pages
        total_s += dt
        share = named / n if n else float("nan")
        print(f"{f.name[:28]:<28} {pages:>5} {n:>7} {named:>6} {share:>6.1%} {pages / dt:>9.1f}")
        for e in missed[: args.misses]:
            print(f"    missed: L{e.level} p.{e.page} {e.title[:70]}")
    share = total_named / total if total else float("nan")
    print(
        f"{'ALL':<28} {total_pages:>5} {total:>7} {total_named:>6} {share:>6.1%} {total_pages / max(total_s, 1e-9):>9.1f}"
    )
    print(f"outline headings named by a section on the right page (±1): {share:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
