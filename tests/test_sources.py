"""Focused sources and their labels: unique labels that say where, the relevance cut-off, merged parts."""

from __future__ import annotations

from typing import Any

from kb.hits import Hit, focus, merge_neighbours, relevance, relevant, unique_labels


def hit(i: int, **kw: Any) -> Hit:
    base: dict[str, Any] = {
        "doc": "spec",
        "title": "Payments API Specification",
        "heading_path": ["Payments API Specification", "Limits"],
        "pages": None,
        "text": f"Limits\nsection {i} says something specific",
        "score": 1.0 / i,
        "scores": {"text": 1.0 / i},
        "image_keys": [f"k{i}"],
        "images": [f"/img/{i}.png"],
        "section_id": f"s{i}",
        "point_id": f"p{i}",
    }
    return Hit(**{**base, **kw})


def test_label_drops_a_heading_that_repeats_the_title_and_says_pages_and_version() -> None:
    h = hit(1, heading_path=["Payments API Specification"], pages=(3, 4), version="v2")
    assert h.label(1) == "[1] Payments API Specification (v2), p. 3–4"
    # a title that already names the version does not repeat it
    assert hit(1, title="Payments API Specification v2", heading_path=[], version="v2").label(2) == (
        "[2] Payments API Specification v2"
    )
    assert hit(1).label(3) == "[3] Payments API Specification › Limits"


def test_labels_are_unique_part_first_then_opening_words() -> None:
    a = hit(1, heading_path=["Payments API Specification"], parts=2, part=1)
    b = hit(2, heading_path=["Payments API Specification"], parts=2, part=2)
    c = hit(3, heading_path=["Limits"], text="Limits\nThe first limit is the size of a string.")
    d = hit(4, heading_path=["Limits"], text="Limits\nThe page count limit is two billion.")
    labels = unique_labels([a, b, c, d])
    assert len(set(labels)) == 4
    assert labels[0] == "[1] Payments API Specification (part 1 of 2)"
    assert labels[1] == "[2] Payments API Specification (part 2 of 2)"
    assert labels[2] == "[3] Payments API Specification › Limits — “The first limit is the size…”"
    assert labels[3].startswith("[4] Payments API Specification › Limits — “The page count limit")
    # the very same text twice still gets two labels
    assert len(set(unique_labels([hit(1), hit(1)]))) == 2


def test_relevance_is_relative_to_the_best_raw_score_per_signal() -> None:
    hits = [
        hit(1, scores={"text": 0.66, "bm25": 18.0}),
        hit(2, scores={"text": 0.65, "bm25": 18.4}),
        hit(3, scores={"text": 0.22, "bm25": 7.5}),  # an unrelated document the fusion still ranks third
        hit(4, scores={"text": 0.30}),  # bm25 did not return it at all
    ]
    rel = relevance(hits)
    assert rel[0] > 0.95 and rel[1] > 0.95 and rel[2] < 0.4 and rel[3] < 0.25
    assert [h.point_id for h in relevant(hits, 0.5)] == ["p1", "p2"]
    assert len(relevant(hits, 0.0)) == 4
    # weights: a signal at weight 0 decides nothing
    assert relevance(hits, {"text": 1.0, "bm25": 0.0})[3] > 0.45
    # the best-ranked hit always stays, whatever the cut-off
    assert [h.point_id for h in relevant(hits[2:], 1.0)] == ["p3"]


def test_neighbouring_parts_of_a_section_merge_into_one_source_at_the_best_rank() -> None:
    p1 = hit(1, parts=3, part=1, pages=(1, 1), score=0.5)
    p2 = hit(2, parts=3, part=2, pages=(2, 2), score=0.9)
    other = hit(3, heading_path=["Other"], score=0.7)
    p3 = hit(4, parts=3, part=3, pages=(3, 3), score=0.2)
    merged = merge_neighbours([p2, other, p1, p3])
    assert [h.point_id for h in merged] == ["p2", "p3"]
    m = merged[0]
    assert m.image_keys == ["k1", "k2", "k4"] and m.pages == (1, 3) and m.part_span == (1, 3)
    assert m.text.index("section 1") < m.text.index("section 2") < m.text.index("section 4")
    assert m.extra["merged_points"] == ["p1", "p2", "p4"]
    # parts 1 and 3 alone are not neighbours: two sources, labelled apart (by the part when pages do not)
    apart = merge_neighbours([hit(1, parts=3, part=1), hit(4, parts=3, part=3)])
    assert unique_labels(apart) == [
        "[1] Payments API Specification › Limits (part 1 of 3)",
        "[2] Payments API Specification › Limits (part 3 of 3)",
    ]
    assert len(focus([p2, other, p1, p3], 0.0)) == 2


def test_supporting_lines_are_the_quoted_and_overlapping_ones_and_none_without_overlap() -> None:
    from kb.answer.evidence import supporting_lines
    from kb.spans import LineSpan

    text = "3. Retention\nPayment records MUST be retained for 7 years.\nCard numbers MUST be deleted within 30 days."
    lines, pos = [], 0
    for i, line in enumerate(text.split("\n")):
        lines.append(LineSpan(pos, pos + len(line), 10, 20 * i, 300, 20 * i + 12))
        pos += len(line) + 1
    said = "Payment records are retained for 7 years [1]. Cards go after a month [2]."
    assert supporting_lines(said, 1, text, lines) == [lines[1]]
    # a quote marks its line even with few shared words
    assert supporting_lines('It says "deleted within 30 days" [2].', 2, text, lines) == [lines[2]]
    # no overlap: nothing marked
    assert supporting_lines("The sky is blue [1].", 1, text, lines) == []


def test_the_close_up_of_marked_lines_is_shown_only_when_it_is_a_small_part_of_the_image() -> None:
    from PIL import Image

    from kb.spans import LineSpan
    from ui.sources import close_up

    tall = Image.new("RGB", (800, 1200), "white")
    line = LineSpan(start=0, end=10, x0=10, y0=600, x1=300, y1=612)
    crop = close_up(tall, [line])
    assert crop is not None and crop.width == 800 and crop.height < 200  # the band around the line
    short = Image.new("RGB", (800, 150), "white")  # a one-band image: the close-up would repeat it
    assert close_up(short, [LineSpan(start=0, end=10, x0=10, y0=60, x1=300, y1=72)]) is None
