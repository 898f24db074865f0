"""What `kb diff` and `kb eval --crosscheck` do, apart from argument parsing."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kb.compare.evaluate import CrosscheckEval, load_pairs, markdown, pair_files, score_pair
from kb.compare.report import Comparison, compare, write_report
from kb.compare.resolve import resolve_document
from kb.settings import Settings

if TYPE_CHECKING:
    from kb.answer.backend import AnswerBackend


def run_diff(settings: Settings, a: str, b: str, *, as_json: bool, out_file: Path | None, out: Console) -> Comparison:
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings)
    cmp = compare(resolve_document(kb.catalog, a), resolve_document(kb.catalog, b))
    if out_file is not None:
        write_report(cmp, out_file, kb.images.open_rgb)
    if as_json:
        sys.stdout.write(json.dumps(cmp.result.to_json(), ensure_ascii=False, indent=1) + "\n")
    else:
        print_table(cmp, out)
    if out_file is not None:
        Console(stderr=True).print(f"wrote {out_file}")
    return cmp


def _pages(p: list[int]) -> str:
    return "" if not p else (str(p[0]) if p[0] == p[-1] else f"{p[0]}–{p[-1]}")


def print_table(cmp: Comparison, out: Console) -> None:
    r = cmp.result
    if not r.changes:
        out.print(f"No changes from {r.a} to {r.b}.")
    else:
        table = Table(title=f"{r.a} → {r.b}: {len(r.changes)} change(s)", show_lines=True)
        for col in ("#", "kind", "category", "summary", "section (A → B)", "A", "B"):
            table.add_column(col, overflow="fold")
        for n, c in enumerate(r.changes, 1):
            la, lb = c.section_a.split(" › ")[-1], c.section_b.split(" › ")[-1]
            sec = la if la == lb else f"{la} → {lb}"
            pa, pb = _pages(c.pages_a), _pages(c.pages_b)
            where = sec + (f" (p. {pa} → {pb})" if pa or pb else "")
            table.add_row(
                str(n),
                c.kind,
                c.category,
                escape(c.summary),
                escape(where),
                escape(c.text_a[:200]),
                escape(c.text_b[:200]),
            )
        out.print(table)
    for name, refs in (("only in A", r.only_in_a), ("only in B", r.only_in_b)):
        if refs:
            out.print(
                f"[bold]{len(refs)} section(s) {name}:[/] "
                + "; ".join(escape(s.section) for s in refs[:20])
                + (" …" if len(refs) > 20 else "")
            )


def run_crosscheck_eval(settings: Settings, file: Path, docs_dir: Path | None, log: Console) -> CrosscheckEval:
    """Ingests each pair's files (render only, no models) into a scratch store, diffs and scores them."""
    from kb.service import KnowledgeBase

    pairs = load_pairs(file)
    docs = docs_dir or file.parent / "docs"
    files = pair_files(pairs, docs)
    res = CrosscheckEval()
    with tempfile.TemporaryDirectory(prefix="kb-crosscheck-") as tmp:
        scratch = settings.model_copy(update={"data_dir": Path(tmp), "qdrant_url": "", "image_store_url": ""})
        with KnowledgeBase(scratch) as kb:
            for r in kb.ingest(files, index=False):
                if r.status == "failed":
                    log.print(f"[red]failed to ingest {r.path}: {r.error}[/]")
            for p in pairs:
                res.pairs.append(score_pair(p, kb.catalog, docs))
    return res


def print_eval(res: CrosscheckEval, json_out: Path | None) -> None:
    sys.stdout.write(markdown(res) + "\n")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(res.to_json(), ensure_ascii=False, indent=1))


def run_crosscheck(
    settings: Settings, docs: list[str], *, topic: str | None, as_json: bool, embed: bool, out: Console
) -> None:
    from kb.compare_jobs.crosscheck import add_verdicts, crosscheck, markdown
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings)
    recs = [resolve_document(kb.catalog, d) for d in docs]
    res = crosscheck(recs, topic=topic, embed=text_embedder(kb) if embed else None)
    answerer = vlm_for(settings)
    if answerer is not None:
        add_verdicts(kb, res, answerer)
    if as_json:
        sys.stdout.write(json.dumps(res.to_json(), ensure_ascii=False, indent=1) + "\n")
    else:
        out.print(escape(markdown(res)), highlight=False)


def text_embedder(kb: object) -> Callable[[list[str]], list[list[float]]] | None:
    """The configured dense text embedder, or None when there is none or it cannot load (key terms only)."""
    from kb.errors import KbError

    try:
        text = kb.embedders.text  # type: ignore[attr-defined]
    except (KbError, OSError):
        return None
    if text is None:
        return None
    return lambda texts: [list(map(float, v)) for v in text.embed_passages(texts)]


def vlm_for(settings: Settings) -> AnswerBackend | None:
    from kb.answer.backend import make_answerer

    return make_answerer(settings)
