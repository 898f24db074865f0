"""Bounded work for every input (issue 10, item 3): line breaking and pagination are linear and not
recursive, one-line files are text (not a giant heading), and the renderer survives adversarial text."""

from __future__ import annotations

import functools
import itertools
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.render import GlyphRenderer
from ingest.render.fonts import FontChain
from ingest.render.paginate import _split_text
from ingest.render.style import Style
from ingest.render.wrap import wrap, wrap_code_line
from ingest.sections import build_sections
from kb.settings import RenderConfig, Settings
from kb.types import Block, ParsedDocument, Section


class CountingChain:
    """A real font chain that counts how many characters it is asked to measure."""

    def __init__(self, chain: FontChain) -> None:
        self.chain = chain
        self.chars = 0

    def measure(self, text: str) -> float:
        self.chars += len(text)
        return self.chain.measure(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.chain, name)


@pytest.fixture(scope="module")
def style() -> Style:
    return Style.from_config(RenderConfig())


def _measured(fn: Any, style: Style, n: int) -> int:
    chain = CountingChain(style.body())
    fn(chain, n)
    return chain.chars


@pytest.mark.parametrize(
    "case",
    [
        lambda c, n: wrap("x" * n, c, 300),  # one huge word (the one-line .txt)
        lambda c, n: wrap("https://example.com/" + "a/b?c=d&" * (n // 8), c, 300),  # a huge URL
        lambda c, n: wrap("日本語の文章です。" * (n // 9), c, 300),  # CJK without spaces
        lambda c, n: wrap_code_line("y" * n, c, 300, 280),  # one huge code line
        lambda c, n: wrap("word " * (n // 5), c, 300),  # ordinary text
    ],
)
def test_line_breaking_is_linear(style: Style, case: Any) -> None:
    """Characters measured grow linearly: 4x the text may cost at most ~5x (it was 16x: quadratic)."""
    small, big = _measured(case, style, 5_000), _measured(case, style, 20_000)
    assert big <= 5 * small, (small, big)


def test_wrap_keeps_every_character_of_a_huge_word(style: Style) -> None:
    text = "a" * 30_000
    lines = wrap(text, style.body(), 300)
    assert "".join(ln.text for ln in lines) == text
    assert all(style.body().measure(ln.text) <= 300 for ln in lines)
    assert all(a.end == b.start for a, b in itertools.pairwise(lines))


def test_split_text_is_not_recursive(style: Style) -> None:
    """Hundreds of parts from one block with a small stack: the old code recursed once per part."""
    block = Block("paragraph", "Sentence number one. " * 6_000)
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 120)
    try:
        parts = _split_text(block, style, style.pitch * 3)
    finally:
        sys.setrecursionlimit(old)
    assert len(parts) > 200
    assert " ".join(p.text for p in parts).split() == block.text.split()


def test_a_one_line_file_is_text_not_a_giant_heading() -> None:
    parsed = ParsedDocument(title="z" * 100_000, format="txt", blocks=(Block("heading", "z" * 100_000, level=1),))
    (sec,) = build_sections("d", parsed)
    assert [b.kind for b in sec.blocks] == ["paragraph"]
    assert all(len(h) <= 200 for h in sec.heading_path)
    parts = GlyphRenderer(RenderConfig()).paginate(sec, parsed.title[:200])
    assert len(parts) < 20  # as one heading in the header of every image it made 1,588 parts


def test_render_of_a_huge_word_finishes(tmp_path: Path) -> None:
    r = GlyphRenderer(RenderConfig())
    sec = Section("d", 0, ("T",), (Block("paragraph", "q" * 60_000),))
    parts = r.paginate(sec, "T")
    assert 2 <= len(parts) <= 10
    assert "".join(b.text for p in parts for b in p.blocks) == "q" * 60_000
    img = r.render(parts[0], "T")
    assert img.width == RenderConfig().page_width


# -- fuzz: parser + sections + renderer on random and adversarial text ---------------------------------
CASE_SECONDS = 60.0  # generous: shared CI boxes; a quadratic case took minutes

_adversarial = st.one_of(
    st.integers(1_000, 60_000).map(lambda n: "w" * n),  # one huge word
    st.integers(100, 4_000).map(lambda n: "a\n" * n),  # thousands of tiny lines
    st.integers(10, 600).map(lambda n: "".join(f"{'  ' * i}- item {i}\n" for i in range(n))),  # deep lists
    st.integers(10, 2_000).map(lambda n: "<div>" * n + "x" + "</div>" * n),  # deep HTML
    st.text(alphabet=st.sampled_from("aé日本語한국어عربى\u200b\u0301\x07\x1b\t\n #*-[]|`"), max_size=5_000),
    st.text(max_size=3_000),  # anything, control characters included
)


@given(text=_adversarial, ext=st.sampled_from([".txt", ".md", ".html"]))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_parse_and_render_finish_or_fail_cleanly(tmp_path_factory: pytest.TempPathFactory, text: str, ext: str) -> None:
    from ingest.formats import parse_file
    from kb.errors import KbError

    f = tmp_path_factory.mktemp("fuzz") / f"doc{ext}"
    f.write_text(text, encoding="utf-8", errors="surrogatepass" if ext == ".txt" else "replace")
    renderer = _renderer()
    t0 = time.perf_counter()
    try:
        parsed = parse_file(f, Settings())
        for sec in build_sections("d", parsed)[:3]:
            parts = renderer.paginate(sec, parsed.title[:200])
            assert parts
            renderer.render(parts[0], parsed.title[:200])
    except KbError:
        pass  # a clear refusal (empty, unreadable) is a clean failure
    assert time.perf_counter() - t0 < CASE_SECONDS


@functools.cache
def _renderer() -> GlyphRenderer:
    return GlyphRenderer(RenderConfig())
