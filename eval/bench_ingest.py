"""Ingest speed on real PDFs: a whole `kb ingest` against a plain text-RAG ingest of the same files.

Both run in one invocation, each in its own process, one after the other, on the same files:

- kb:       `python -m kb.cli ingest FILES` into a scratch data dir: parse, section, render glyph images,
            embed (bundled MiniLM; no CLIP), index in local Qdrant;
- baseline: pypdf text extraction -> LlamaIndex SentenceSplitter(512) -> the same MiniLM, batch-embedded.

Also printed: parse alone (`ingest.formats.parse_file`) in pages per second, pinned to one core after a
warm-up, and the peak resident memory of each run's process tree (sampled every 0.1 s).

    python eval/bench_ingest.py                       # the default set from eval/corpus/fetch_pdfs.sh
    python eval/bench_ingest.py a.pdf b.pdf ...       # any PDFs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "eval" / "corpus" / "pdfs"
DEFAULT = ["R-data.pdf", "R-lang.pdf", "R-admin.pdf", "R-FAQ.pdf", "python-datetime.pdf", "python-stdtypes.pdf"]


def _env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        KB_DATA_DIR=str(data_dir),
        KB_TEXT_MODEL="minilm-bundled",
        KB_CLIP_MODEL="",
        KB_QDRANT_URL="",
        DO_NOT_TRACK="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    return env


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for q in procs:
        with contextlib.suppress(psutil.Error):
            total += q.memory_info().rss
    return total


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, peak tree RSS bytes, stdout) of one command. CPU seconds (user + system
    of the process and the children it waited for) stay comparable when other work shares the machine."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            stop.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, errs = proc.communicate()
    stop.set()
    th.join()
    secs = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{errs[-3000:]}")
    return secs, cpu, peak, out


def baseline(files: list[Path]) -> dict[str, float]:
    """The text-RAG ingest: extract, split, embed. Runs inside the child process."""
    from llama_index.core.node_parser import SentenceSplitter
    from pypdf import PdfReader

    from kb.embed.dense import SentenceEmbedder

    splitter = SentenceSplitter(chunk_size=512)
    emb = SentenceEmbedder("minilm-bundled", device="cpu")
    chunks: list[str] = []
    for f in files:
        text = "\n".join(page.extract_text() or "" for page in PdfReader(str(f)).pages)
        chunks.extend(splitter.split_text(text))
    vectors = emb.embed_passages(chunks)
    return {"chunks": len(chunks), "dims": len(vectors[0]) if len(vectors) else 0}


def parse_only(files: list[Path]) -> dict[str, float]:
    """Parse alone on one core, after a warm-up parse (imports and first-call costs excluded)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from ingest.formats import parse_file
    from kb.settings import Settings

    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="kb-bench-parse-")))
    parse_file(files[0], settings)  # warm-up
    pages = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    per: dict[str, float] = {}
    for f in files:
        t1 = time.perf_counter()
        doc = parse_file(f, settings)
        pages += doc.pages or 0
        per[f.name] = round((doc.pages or 0) / (time.perf_counter() - t1), 1)
    secs = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {  # type: ignore[dict-item]
        "pages": pages,
        "seconds": secs,
        "pages_per_s": pages / secs,
        "pages_per_cpu_s": pages / cpu,
        "per_file": per,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--child", choices=["baseline", "parse"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    files = args.files or [CORPUS / n for n in DEFAULT]
    missing = [f for f in files if not f.exists()]
    if missing:
        print(f"missing: {', '.join(map(str, missing))}; run eval/corpus/fetch_pdfs.sh first")
        return 2
    if args.child == "baseline":
        print(json.dumps(baseline(files)))
        return 0
    if args.child == "parse":
        print(json.dumps(parse_only(files)))
        return 0

    me = [sys.executable, str(Path(__file__).resolve())]
    names = [str(f) for f in files]
    with tempfile.TemporaryDirectory(prefix="kb-bench-ingest-") as tmp:
        env = _env(Path(tmp) / "kb")
        print(f"{len(files)} files: {', '.join(f.name for f in files)}")
        _, _, _, out = timed([*me, "--child", "parse", *names], env)
        parse = json.loads(out.strip().splitlines()[-1])
        print(
            f"parse alone (one core): {parse['pages']} pages in {parse['seconds']:.1f} s = "
            f"{parse['pages_per_s']:.1f} pages/s wall, {parse['pages_per_cpu_s']:.1f} pages per CPU second"
        )
        print("  per file (pages/s wall): " + ", ".join(f"{k} {v}" for k, v in parse["per_file"].items()))
        base_s, base_cpu, base_mem, out = timed([*me, "--child", "baseline", *names], env)
        base = json.loads(out.strip().splitlines()[-1])
        print(
            f"text-RAG baseline: {base_s:.1f} s wall, {base_cpu:.1f} CPU s, {base['chunks']} chunks, "
            f"peak {base_mem / 2**30:.2f} GB"
        )
        kb_s, kb_cpu, kb_mem, _ = timed([sys.executable, "-m", "kb.cli", "ingest", *names], env)
        print(f"kb ingest:         {kb_s:.1f} s wall, {kb_cpu:.1f} CPU s, peak {kb_mem / 2**30:.2f} GB")
    print(
        f"ratio kb / baseline: {kb_s / base_s:.2f}x wall, {kb_cpu / base_cpu:.2f}x CPU (target <= 1.5x); "
        f"pages: {parse['pages']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
