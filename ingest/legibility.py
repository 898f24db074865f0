"""Legibility of glyph images: tesseract OCR and how much of the source text it recovers."""

from __future__ import annotations

import difflib
import itertools
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


# -- legibility by token class ------------------------------------------------------------------
# Identifiers are what questions and cross-checks hinge on, so they are scored on their own, with
# their inner punctuation kept ("/usr/share/man" must not pass as "usr share man").

CLASSES = ("path", "option", "number", "code", "cjk")
# Quotes and brackets around an identifier are not part of it (OCR often reads a curly quote as * or ').
# Either curly quote may open or close: typeset PDFs often open with ” (”/etc/passwd”).
_OPEN = "([{\"'«“‘„”’<`*"
_CLOSE = ")]}\"'»”’“‘>.,;:!?`*"
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_DRIVE = re.compile(r"^[a-z]:\\")
_OPTION = re.compile(r"^--?[A-Za-z][\w.-]*(?:=\S*)?$")
_NUMBER = re.compile(r"^[-+±~≈<>≤≥]?(?:\d[\d,._]*|0x[0-9a-f]+)(?:[a-zµ°%/²³]+[\w/%]*)?$", re.IGNORECASE)
_UNITS = frozenset(
    ["b", "kb", "mb", "gb", "tb", "pb", "kib", "mib", "gib", "tib", "bit", "bits", "byte", "bytes", "ms", "s", "sec", "secs", "µs", "us", "ns", "min", "mins", "h", "hr", "hrs", "d", "hz", "khz", "mhz", "ghz", "px", "pt", "em", "%", "°c", "°f", "v", "mv", "a", "ma", "w", "kw", "mm", "cm", "m", "km", "rpm", "rps", "qps", "ops", "iops", "req/s", "mb/s", "gb/s"]
)
# Slashes with regex or glob syntax around them are patterns (sed s/a/b/, ^/git/(.*)$), scored as code.
_PATTERN = re.compile(r"[\[\](){}^|*]")
_CODEISH = re.compile(r"[_$@#]|\(\)|::|->|=>|[a-z][A-Z]|^\w+\.\w+\(|[=<>]=|\w\.\w+\.\w|^\w+\[")


def _id_norm(raw: str) -> str:
    """An identifier as compared: NFKC, casefolded, sentence punctuation off its edges only."""
    w = normalise(raw)
    while w and w[0] in _OPEN:
        w = w[1:]
    while w and w[-1] in _CLOSE:
        w = w[:-1]
    return w


def token_class(raw: str, in_code: bool) -> str | None:
    """The identifier class of one whitespace-separated source token, or None for ordinary words."""
    w = _id_norm(raw)
    if len(w) < 2 and not w.isdigit():
        return None
    pathish = _URL.match(w) or w.startswith(("/", "~/", "./", "../")) or w.count("/") >= 2 or _DRIVE.match(w)
    if pathish and sum(c.isalnum() for c in w) >= 2 and not _PATTERN.search(w):
        return "path"
    if _OPTION.match(w):
        return "option"
    if _NUMBER.match(w):
        return "number"
    if (in_code or _CODEISH.search(_strip_edges_keep_case(raw))) and any(c.isalnum() for c in w):
        return "code"
    return None


def _strip_edges_keep_case(raw: str) -> str:
    w = unicodedata.normalize("NFKC", raw)
    return w.strip(_OPEN + _CLOSE)


def class_items(blocks: list[tuple[str, bool]]) -> dict[str, list[tuple[str, ...]]]:
    """Identifier items per class from (text, is_code) pieces. A number followed by a unit word is one
    item ("300", "ms"): both must come back, in that order. CJK characters are items one by one."""
    out: dict[str, list[tuple[str, ...]]] = {c: [] for c in CLASSES}
    for text, in_code in blocks:
        toks = text.split()
        for i, raw in enumerate(toks):
            if any(is_cjk(c) for c in raw):
                out["cjk"].extend((c,) for c in normalise(raw) if is_cjk(c) and c.isalnum())
                continue
            cls = token_class(raw, in_code)
            if cls is None:
                continue
            item: tuple[str, ...] = (_id_norm(raw),)
            if cls == "number" and i + 1 < len(toks) and _id_norm(toks[i + 1]) in _UNITS and item[0].replace(
                ",", ""
            ).replace(".", "").isdigit():
                item = (item[0], _id_norm(toks[i + 1]))
            out[cls].append(item)
    return out


def ocr_items(ocr: str) -> Counter[tuple[str, ...]]:
    """Every OCR token (identifier-normalised) and adjacent pair, for matching class items; CJK per character."""
    toks: list[str] = []
    for raw in ocr.split():
        if any(is_cjk(c) for c in raw):
            toks.extend(c for c in normalise(raw) if c.isalnum())
        else:
            w = _id_norm(raw)
            if w:
                toks.append(w)
    got: Counter[tuple[str, ...]] = Counter((t,) for t in toks)
    got.update(itertools.pairwise(toks))
    return got


def class_recall(items: dict[str, list[tuple[str, ...]]], ocr: str) -> dict[str, tuple[int, int]]:
    """(recovered, total) per class: multiset match of the source items against the OCR's."""
    got = ocr_items(ocr)
    out: dict[str, tuple[int, int]] = {}
    for cls, its in items.items():
        want = Counter(its)
        out[cls] = (sum(min(n, got[k]) for k, n in want.items()), sum(want.values()))
    return out


def class_misses(items: dict[str, list[tuple[str, ...]]], ocr: str) -> dict[str, list[tuple[str, str]]]:
    """Per class, the source items the OCR did not recover, each with the closest OCR reading ("" when
    nothing is close): what a render failure reads as, or a sign that the source tokenisation is at fault."""
    got = ocr_items(ocr)
    singles = sorted({k[0] for k in got if len(k) == 1})
    pairs = sorted({" ".join(k) for k in got if len(k) == 2})
    out: dict[str, list[tuple[str, str]]] = {}
    for cls, its in items.items():
        left = Counter(got)
        missed = []
        for it in its:
            if left[it] > 0:
                left[it] -= 1
                continue
            want = " ".join(it)
            pool = pairs if len(it) == 2 else singles
            close = difflib.get_close_matches(want, pool, n=1, cutoff=0.5)
            missed.append((want, close[0] if close else ""))
        out[cls] = missed
    return out


# -- reading order --------------------------------------------------------------------------------


def lcs_length(a: list[str], b: list[str]) -> int:
    """Longest common subsequence of two word sequences (Hyyrö's bit-parallel algorithm: O(len(b)) big-int
    operations, so a 2,000-word page costs milliseconds)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, x in enumerate(a):
        masks[x] = masks.get(x, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for y in b:
        m = masks.get(y)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


def reading_order(source: str, ocr: str) -> tuple[int, int]:
    """(LCS of the source and OCR word sequences, source words the OCR recovered at all). Their ratio is the
    reading-order score: 1.0 when every recovered word comes back in source order, whatever the recall."""
    a, b = words(source), words(ocr)
    want, got = Counter(a), Counter(b)
    matched = sum(min(n, got[w]) for w, n in want.items())
    return lcs_length(a, b), matched
