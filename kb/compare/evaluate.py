"""`kb eval --crosscheck FILE.json`: planted changes found, and false differences reported, per pair.

The file is the public `crosscheck.json` format: `v1.doc`, `v2.doc` (file names in the docs folder)
and `changes` with `v1_text` / `v2_text` (exact substrings of each side, "" when absent). A list of
such objects, or `{"pairs": [...]}`, is read as several pairs. A reported change matches a planted one
when its quoted texts contain the planted texts (after normalisation); any reported change that matches
none is a false positive (format-only differences included).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.catalog import Catalog
from kb.compare.diff import Change
from kb.compare.report import compare
from kb.compare.resolve import resolve_document
from kb.compare.text import clean
from kb.errors import KbError


def _norm(s: str) -> str:
    return " ".join(clean(s).casefold().split())


@dataclass
class PairResult:
    v1: str
    v2: str
    planted: int
    found: list[str]
    missed: list[str]
    false_positives: list[dict[str, Any]]
    seconds: float
    reported: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "v1": self.v1,
            "v2": self.v2,
            "planted": self.planted,
            "found": len(self.found),
            "found_ids": self.found,
            "missed_ids": self.missed,
            "reported": self.reported,
            "false_positives": len(self.false_positives),
            "false_positive_changes": self.false_positives,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class CrosscheckEval:
    pairs: list[PairResult] = field(default_factory=list)

    @property
    def found(self) -> int:
        return sum(len(p.found) for p in self.pairs)

    @property
    def planted(self) -> int:
        return sum(p.planted for p in self.pairs)

    @property
    def false_positives(self) -> int:
        return sum(len(p.false_positives) for p in self.pairs)

    def to_json(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "planted": self.planted,
            "false_positives": self.false_positives,
            "seconds": round(sum(p.seconds for p in self.pairs), 3),
            "pairs": [p.to_json() for p in self.pairs],
        }


def load_pairs(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KbError(f"cannot read {path}: {exc}", "give a crosscheck.json file") from exc
    pairs = data.get("pairs", data) if isinstance(data, dict) else data
    pairs = [pairs] if isinstance(pairs, dict) else pairs
    if not isinstance(pairs, list) or not all(isinstance(p, dict) and "v1" in p and "v2" in p for p in pairs):
        raise KbError(f"{path} is not in the crosscheck format", "each pair needs v1.doc, v2.doc and changes")
    return pairs


def matches(planted: dict[str, Any], change: Change) -> bool:
    v1, v2 = _norm(planted.get("v1_text") or ""), _norm(planted.get("v2_text") or "")
    ta, tb = _norm(change.text_a), _norm(change.text_b)
    if not v1 and not v2:
        return False
    ok_a = v1 in ta if v1 else change.kind == "added" or not ta
    ok_b = v2 in tb if v2 else change.kind == "removed" or not tb
    return ok_a and ok_b


def score_pair(pair: dict[str, Any], catalog: Catalog, docs_dir: Path) -> PairResult:
    v1, v2 = str(pair["v1"]["doc"]), str(pair["v2"]["doc"])
    t0 = time.perf_counter()
    cmp = compare(resolve_document(catalog, str(docs_dir / v1)), resolve_document(catalog, str(docs_dir / v2)))
    seconds = time.perf_counter() - t0
    planted = list(pair.get("changes") or [])
    found = [str(p.get("id", i)) for i, p in enumerate(planted) if any(matches(p, c) for c in cmp.result.changes)]
    missed = [str(p.get("id", i)) for i, p in enumerate(planted) if str(p.get("id", i)) not in found]
    fps = [c.to_json() for c in cmp.result.changes if not any(matches(p, c) for p in planted)]
    return PairResult(v1, v2, len(planted), found, missed, fps, seconds, len(cmp.result.changes))


def pair_files(pairs: list[dict[str, Any]], docs_dir: Path) -> list[Path]:
    files = []
    for p in pairs:
        for side in ("v1", "v2"):
            f = docs_dir / str(p[side]["doc"])
            if not f.is_file():
                raise KbError(f"{f} does not exist", "give the folder holding the pair's files with --docs")
            files.append(f)
    return list(dict.fromkeys(files))


def markdown(res: CrosscheckEval) -> str:
    lines = ["| v1 | v2 | found / planted | false positives | reported | seconds |", "|---|---|---|---|---|---|"]
    for p in res.pairs:
        lines.append(
            f"| {p.v1} | {p.v2} | {len(p.found)}/{p.planted} | {len(p.false_positives)} | {p.reported} | {p.seconds:.2f} |"
        )
    lines.append(
        f"| **all** | | **{res.found}/{res.planted}** | **{res.false_positives}** | "
        f"{sum(p.reported for p in res.pairs)} | {sum(p.seconds for p in res.pairs):.2f} |"
    )
    for p in res.pairs:
        if p.missed:
            lines.append(f"\nmissed in {p.v1} → {p.v2}: {', '.join(p.missed)}")
        for fp in p.false_positives:
            lines.append(f"\nfalse positive in {p.v1} → {p.v2}: {fp['kind']} {fp['summary']!r} ({fp['section_a']})")
    return "\n".join(lines)
