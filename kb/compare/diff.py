"""What changed from document A to document B.

1. Units (sentences, list items, table rows) of both documents are aligned as two sequences by their
   normalised word tokens: equal units anchor the alignment whatever their section, heading number
   or format.
2. Between anchors, the differing stretch is diffed word by word, so a sentence split differently,
   a line wrapped differently or a superscript written differently is no change; each word
   difference is attributed to the units it touches, which become one change.
3. Units removed in one place and added unchanged in another are moves. A section none of whose units
   has a counterpart is listed apart (only_in_a / only_in_b), not as changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from difflib import SequenceMatcher
from typing import Any, Literal

from kb.compare.classify import Category, classify, classify_whole
from kb.compare.units import DocView

ChangeKind = Literal["changed", "added", "removed", "moved"]

# Above this many words on each side, a differing stretch is reported unit by unit (removed and added)
# instead of word by word: it bounds the quadratic word diff on wholly different stretches.
WORD_DIFF_LIMIT = 4000
MIN_MOVE_TOKENS = 4


@dataclass
class Change:
    kind: ChangeKind
    section_a: str
    section_b: str
    pages_a: list[int]
    pages_b: list[int]
    text_a: str
    text_b: str
    summary: str
    category: Category
    units_a: list[int] = field(default_factory=list)  # for marking lines on the images; not in the JSON
    units_b: list[int] = field(default_factory=list)
    context_a: int | None = None  # for an added change: the unit in A next to where it was added
    context_b: int | None = None  # for a removed change: the unit in B next to where it was

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("units_a", "units_b", "context_a", "context_b"):
            d.pop(k)
        return d


@dataclass
class SectionRef:
    section: str
    pages: list[int]
    units: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DiffResult:
    a: str
    b: str
    changes: list[Change]
    only_in_a: list[SectionRef]
    only_in_b: list[SectionRef]

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "changes": [c.to_json() for c in self.changes],
            "only_in_a": [s.to_json() for s in self.only_in_a],
            "only_in_b": [s.to_json() for s in self.only_in_b],
        }


@dataclass
class _Group:
    ua: set[int] = field(default_factory=set)
    ub: set[int] = field(default_factory=set)
    words: list[tuple[list[str], list[str]]] = field(default_factory=list)


class _Differ:
    def __init__(self, a: DocView, b: DocView) -> None:
        self.a, self.b = a, b
        self.match_a: dict[int, int] = {}  # unit in A -> its counterpart in B (equal, changed or moved)
        self.match_b: dict[int, int] = {}
        self.groups: list[_Group] = []

    def run(self) -> DiffResult:
        ka = [u.key for u in self.a.units]
        kb = [u.key for u in self.b.units]
        sm = SequenceMatcher(None, ka, kb, autojunk=False)
        ops = _scope(sm.get_opcodes(), len(ka), len(kb))
        for tag, i1, i2, j1, j2 in ops:
            if tag == "equal":
                for d in range(i2 - i1):
                    self._pair(i1 + d, j1 + d)
            else:
                self._region(range(i1, i2), range(j1, j2))
        moves = self._moves()
        only_a, only_b, dropped_a, dropped_b = self._unmatched_sections()
        changes = [c for g in self.groups if (c := self._change(g, dropped_a, dropped_b)) is not None]
        changes += moves
        changes.sort(key=lambda c: (min(c.units_a, default=10**9), min(c.units_b, default=10**9)))
        return DiffResult(self.a.doc_id, self.b.doc_id, changes, only_a, only_b)

    def _pair(self, i: int, j: int) -> None:
        self.match_a[i] = j
        self.match_b[j] = i

    def _region(self, ra: range, rb: range) -> None:
        ta = [(t, i) for i in ra for t in self.a.units[i].toks]
        tb = [(t, j) for j in rb for t in self.b.units[j].toks]
        if not ta or not tb or len(ta) > WORD_DIFF_LIMIT or len(tb) > WORD_DIFF_LIMIT:
            for i in ra:
                self.groups.append(_Group(ua={i}))
            for j in rb:
                self.groups.append(_Group(ub={j}))
            return
        sm = SequenceMatcher(None, [t.norm for t, _ in ta], [t.norm for t, _ in tb], autojunk=False)
        ops = sm.get_opcodes()
        overlap: dict[tuple[int, int], int] = defaultdict(int)
        for tag, i1, i2, j1, _j2 in ops:
            if tag == "equal":
                for d in range(i2 - i1):
                    overlap[(ta[i1 + d][1], tb[j1 + d][1])] += 1
        best_a: dict[int, tuple[int, int]] = {}
        best_b: dict[int, tuple[int, int]] = {}
        for (i, j), n in overlap.items():
            if n > best_a.get(i, (0, -1))[0]:
                best_a[i] = (n, j)
            if n > best_b.get(j, (0, -1))[0]:
                best_b[j] = (n, i)
        for i, (_, j) in best_a.items():
            if best_b.get(j, (0, -1))[1] == i:
                self._pair(i, j)  # mutual best: the same unit, perhaps changed
        words_a = _count(ta)
        words_b = _count(tb)
        local: list[_Group] = []
        for tag, i1, i2, j1, j2 in ops:
            if tag == "equal":
                continue
            sa, sb = ta[i1:i2], tb[j1:j2]
            na, nb = [t.norm for t, _ in sa], [t.norm for t, _ in sb]
            if "".join(na) == "".join(nb):
                continue  # "can not" / "cannot", "2 31" / "231": spacing only
            if self._furniture(na, nb):
                continue
            g = _Group(words=[_with_context(ta, tb, i1, i2, j1, j2)])
            g.ua = {i for _, i in sa}
            g.ub = {j for _, j in sb}
            # A word difference inside a unit also touches the unit's counterpart on the other side.
            for i in list(g.ua):
                if sum(1 for _, k in sa if k == i) < words_a[i] and i in best_a:
                    g.ub.add(best_a[i][1])
            for j in list(g.ub):
                if sum(1 for _, k in sb if k == j) < words_b[j] and j in best_b:
                    g.ua.add(best_b[j][1])
            if not g.ua and i1 > 0 and sb and words_b[sb[0][1]] > sum(1 for _, k in sb if k == sb[0][1]):
                g.ua.add(ta[i1 - 1][1])
            local.append(g)
        self.groups += _merge(local)

    def _furniture(self, na: list[str], nb: list[str]) -> bool:
        """A stray page number inside a paragraph of a paginated document."""
        if na and nb:
            return False
        side, words = (self.a, na) if na else (self.b, nb)
        return side.paginated and len(words) == 1 and words[0].isdigit() and len(words[0]) <= 4

    def _moves(self) -> list[Change]:
        """Whole units removed here and added there unchanged: moved (grouped per section pair)."""
        removed = [g for g in self.groups if g.ua and not g.ub]
        added = [g for g in self.groups if g.ub and not g.ua]
        by_key: dict[str, list[tuple[_Group, int]]] = defaultdict(list)
        for g in added:
            for j in g.ub:
                u = self.b.units[j]
                if len(u.toks) >= MIN_MOVE_TOKENS or u.kind == "heading":
                    by_key[self.b.units[j].key].append((g, j))
        pairs: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
        for g in removed:
            for i in sorted(g.ua):
                cands = by_key.get(self.a.units[i].key)
                if not cands:
                    continue
                gb, j = cands.pop(0)
                g.ua.discard(i)
                gb.ub.discard(j)
                self._pair(i, j)
                pairs[(self.a.units[i].section, self.b.units[j].section)].append((i, j))
        self.groups = [g for g in self.groups if g.ua or g.ub]
        out = []
        for (sa, sb), ij in pairs.items():
            ua = [i for i, _ in ij]
            ub = [j for _, j in ij]
            sec_a, sec_b = self.a.sections[sa], self.b.sections[sb]
            whole = len(ua) == len(sec_a.units)
            what = f"section {sec_a.label!r}" if whole else f"{len(ua)} unit(s)"
            out.append(
                Change(
                    "moved",
                    sec_a.label,
                    sec_b.label,
                    self.a.pages(ua),
                    self.b.pages(ub),
                    " ".join(self.a.units[i].text for i in ua),
                    " ".join(self.b.units[j].text for j in ub),
                    f"{what} moved: now under {sec_b.label!r}",
                    "text",
                    ua,
                    ub,
                )
            )
        return out

    def _unmatched_sections(self) -> tuple[list[SectionRef], list[SectionRef], set[int], set[int]]:
        """Sections with units, none of which has a counterpart; unless the other side has an equally
        unmatched section of the same title (then it was rewritten, and its changes are reported)."""

        def unmatched(view: DocView, match: dict[int, int]) -> list[int]:
            return [k for k, s in enumerate(view.sections) if s.units and not any(u in match for u in s.units)]

        ua = [k for k in unmatched(self.a, self.match_a) if _real_heading(self.a.sections[k].path)]
        ub = [k for k in unmatched(self.b, self.match_b) if _real_heading(self.b.sections[k].path)]
        titles_a = {self.a.sections[k].title for k in ua if self.a.sections[k].title}
        titles_b = {self.b.sections[k].title for k in ub if self.b.sections[k].title}
        only_a = [k for k in ua if self.a.sections[k].title not in titles_b or not self.a.sections[k].title]
        only_b = [k for k in ub if self.b.sections[k].title not in titles_a or not self.b.sections[k].title]

        def refs(view: DocView, ks: list[int]) -> list[SectionRef]:
            return [
                SectionRef(view.sections[k].label, view.pages(view.sections[k].units), len(view.sections[k].units))
                for k in ks
            ]

        drop_a = {u for k in only_a for u in self.a.sections[k].units}
        drop_b = {u for k in only_b for u in self.b.sections[k].units}
        return refs(self.a, only_a), refs(self.b, only_b), drop_a, drop_b

    def _context(self, view: DocView, units: list[int], match: dict[int, int]) -> int | None:
        """The unit on the other side next to where units of `view` would be: the counterpart of the
        nearest matched unit before them (or after, at the start)."""
        first = min(units)
        for k in list(range(first - 1, -1, -1)) + list(range(first + 1, len(view.units))):
            if k in match:
                return match[k]
        return None

    def _change(self, g: _Group, drop_a: set[int], drop_b: set[int]) -> Change | None:
        ua = sorted(g.ua - drop_a)
        ub = sorted(g.ub - drop_b)
        if not ua and not ub:
            return None
        a, b = self.a, self.b
        text_a = " ".join(a.units[i].text for i in ua)
        text_b = " ".join(b.units[j].text for j in ub)
        ctx_a = None if ua else self._context(b, ub, self.match_b)
        ctx_b = None if ub else self._context(a, ua, self.match_a)
        at_a = ua[0] if ua else ctx_a
        at_b = ub[0] if ub else ctx_b
        sec_a = a.sections[a.units[at_a].section].label if at_a is not None else ""
        sec_b = b.sections[b.units[at_b].section].label if at_b is not None else ""
        if ua and ub:
            cat, summary = classify(text_a, text_b, g.words)
            kind: ChangeKind = "changed"
        elif ua:
            cat, summary = classify_whole(a.units[ua[0]].kind, text_a, "removed")
            kind = "removed"
        else:
            cat, summary = classify_whole(b.units[ub[0]].kind, text_b, "added")
            kind = "added"
        return Change(kind, sec_a, sec_b, a.pages(ua), b.pages(ub), text_a, text_b, summary, cat, ua, ub, ctx_a, ctx_b)


_UNITS = frozenset(
    [
        "s",
        "month",
        "months",
        "year",
        "years",
        "ms",
        "us",
        "µs",
        "ns",
        "sec",
        "secs",
        "second",
        "seconds",
        "min",
        "mins",
        "minute",
        "minutes",
        "h",
        "hr",
        "hrs",
        "hour",
        "hours",
        "d",
        "day",
        "days",
        "week",
        "weeks",
        "b",
        "kb",
        "mb",
        "gb",
        "tb",
        "kib",
        "mib",
        "gib",
        "tib",
        "byte",
        "bytes",
        "bit",
        "bits",
        "kbps",
        "mbps",
        "gbps",
        "%",
        "percent",
        "px",
        "pt",
        "em",
        "rps",
        "qps",
        "rpm",
        "requests",
        "connections",
        "items",
        "rows",
        "pages",
        "times",
    ]
)


def _with_context(
    ta: list[tuple[Any, int]], tb: list[tuple[Any, int]], i1: int, i2: int, j1: int, j2: int
) -> tuple[list[str], list[str]]:
    """The differing words, with a number before a changed unit and the unit after a changed number
    ("30 s → 30 ms", "200 ms → 500 ms"), so a summary reads as a value."""
    a = [t.raw for t, _ in ta[i1:i2]]
    b = [t.raw for t, _ in tb[j1:j2]]
    before = i1 > 0 and j1 > 0 and ta[i1 - 1][0].norm == tb[j1 - 1][0].norm and ta[i1 - 1][0].norm[0].isdigit()
    if before and ((a and a[0].casefold() in _UNITS) or (b and b[0].casefold() in _UNITS)):
        a, b = [ta[i1 - 1][0].raw, *a], [tb[j1 - 1][0].raw, *b]
    after = i2 < len(ta) and j2 < len(tb) and ta[i2][0].norm == tb[j2][0].norm and ta[i2][0].norm in _UNITS
    if after and ((a and a[-1][:1].isdigit()) or (b and b[-1][:1].isdigit())):
        a, b = [*a, ta[i2][0].raw], [*b, tb[j2][0].raw]
    return a, b


# B is a part of A (one chapter against the whole book) when the stretch of A it matches is under this
# share of A while it matches nearly all of itself; the rest of A is then out of scope, not removed.
PART_OF = 0.8


def _scope(ops: Sequence[tuple[str, int, int, int, int]], na: int, nb: int) -> list[tuple[str, int, int, int, int]]:
    """Unit opcodes, with what lies beyond the first and last anchor cut away on the side that is the
    whole when the other side is a part of it."""
    eq = [op for op in ops if op[0] == "equal"]
    if not eq or not ops:
        return list(ops)
    span_a = eq[-1][2] - eq[0][1]
    span_b = eq[-1][4] - eq[0][3]
    a_whole = span_a < PART_OF * na and span_b >= PART_OF * nb
    b_whole = span_b < PART_OF * nb and span_a >= PART_OF * na
    if not (a_whole or b_whole):
        return list(ops)
    out = list(ops)
    for k in (0, len(out) - 1):
        tag, i1, i2, j1, j2 = out[k]
        if tag == "equal":
            continue
        if a_whole:
            i1, i2 = (i2, i2) if k == 0 else (i1, i1)
        if b_whole:
            j1, j2 = (j2, j2) if k == 0 else (j1, j1)
        out[k] = ("replace" if i1 < i2 and j1 < j2 else "delete" if i1 < i2 else "insert", i1, i2, j1, j2)
    return [op for op in out if op[1] < op[2] or op[3] < op[4]]


def _real_heading(path: tuple[str, ...]) -> bool:
    """A heading a parser may have made of a numbered list item or a sentence (long, or ending in
    punctuation) does not make a section of its own: its text is reported as changes."""
    if not path:
        return True
    last = path[-1].rstrip("¶ ").strip()
    return len(last.split()) <= 12 and not last.endswith((".", ",", ";", ":"))


def _count(toks: list[tuple[Any, int]]) -> dict[int, int]:
    out: dict[int, int] = defaultdict(int)
    for _, u in toks:
        out[u] += 1
    return out


def _merge(groups: list[_Group]) -> list[_Group]:
    """Groups sharing a unit on either side are one change."""
    out: list[_Group] = []
    for g in groups:
        hit = [o for o in out if o.ua & g.ua or o.ub & g.ub]
        for o in hit:
            g.ua |= o.ua
            g.ub |= o.ub
            g.words = o.words + g.words
            out.remove(o)
        out.append(g)
    return out


def diff_views(a: DocView, b: DocView) -> DiffResult:
    return _Differ(a, b).run()
