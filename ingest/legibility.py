"""Legibility of glyph images: tesseract OCR and how much of the source text it recovers."""

from __future__ import annotations

import difflib
import re
import subprocess
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

from PIL import Image

from ingest.render.wrap import is_cjk

_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")


def ocr_text(image: Image.Image, lang: str = "eng", upscale: int = 2, psm: int = 3) -> str:
    """OCR an image with the tesseract CLI after a LANCZOS upscale (automatic page segmentation, so
    columns are read one after the other)."""
    img = image.convert("RGB")
    if upscale != 1:
        img = img.resize((img.width * upscale, img.height * upscale), Image.Resampling.LANCZOS)
    with tempfile.TemporaryDirectory(prefix="kb-ocr-") as tmp:
        path = Path(tmp) / "page.png"
        img.save(path)
        proc = subprocess.run(
            ["tesseract", str(path), "stdout", "-l", lang, "--psm", str(psm)],
            capture_output=True,
            text=True,
            check=False,
            env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin:/usr/local/bin"},
        )
    if proc.returncode != 0:
        raise RuntimeError(f"tesseract failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
    return proc.stdout


def ocr_lang(text: str) -> str:
    """Tesseract languages for a source text: Japanese model too when it has CJK characters."""
    return "jpn+eng" if any(is_cjk(c) for c in text) else "eng"


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def words(text: str) -> list[str]:
    """Normalised words with punctuation stripped at their edges (CJK runs split per character)."""
    out: list[str] = []
    for raw in normalise(text).split():
        w = _EDGE_PUNCT.sub("", raw)
        if not w:
            continue
        if any(is_cjk(c) for c in w):
            out.extend(c for c in w if c.isalnum())
        else:
            out.append(w)
    return out


def word_recall(source: str, ocr: str) -> float:
    """Share of source words (a multiset) that the OCR output recovers."""
    want = Counter(words(source))
    total = sum(want.values())
    if total == 0:
        return 1.0
    got = Counter(words(ocr))
    return sum(min(n, got[w]) for w, n in want.items()) / total


def _collapse(text: str) -> str:
    return " ".join(normalise(text).split())


def char_similarity(source: str, ocr: str) -> float:
    """difflib ratio between whitespace-collapsed normalised texts (1.0 = identical)."""
    a, b = _collapse(source), _collapse(ocr)
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
