"""Make GFM/CommonMark list nesting readable for Python-Markdown (which unstructured uses).

CommonMark nests a list item under the previous one when it is indented to that item's content
column ("1. x" -> 3 spaces, "- x" -> 2 spaces). Python-Markdown only nests at 4-space steps, so
hand-written Markdown with 2- or 3-space nesting comes out as one flat list. We re-indent list
blocks to 4 spaces per level (fenced code and continuation lines move with their item) before the
text reaches unstructured. Anything outside a list is left byte-for-byte alone.
"""

from __future__ import annotations

import re

_ITEM = re.compile(r"^( *)([-*+]|\d{1,9}[.)])( +|$)")
_FENCE = re.compile(r"^ *(`{3,}|~{3,})")


def _shift(line: str, delta: int) -> str:
    if delta >= 0:
        return " " * delta + line
    cut = min(-delta, len(line) - len(line.lstrip(" ")))
    return line[cut:]


def normalise_list_indent(text: str) -> str:
    out: list[str] = []
    stack: list[tuple[int, int]] = []  # (content column, shift for its continuation lines) per open item
    fence: str | None = None
    fence_delta = 0
    prev_blank = False
    for line in text.split("\n"):
        if fence is not None:  # inside a fenced block: move with its item, never parse
            out.append(_shift(line, fence_delta) if line.strip() else line)
            if line.strip().startswith(fence):
                fence = None
            continue
        if not line.strip():
            out.append(line)
            prev_blank = True
            continue
        indent = len(line) - len(line.lstrip(" "))
        m = _ITEM.match(line)
        if m or prev_blank:
            while stack and indent < stack[-1][0]:
                stack.pop()
        if m and stack and indent >= stack[-1][0] + 4 and prev_blank:
            m = None  # indented code inside the item, not a nested item
        if m:
            new_indent = 4 * len(stack)
            content_col = indent + len(m.group(2)) + max(1, len(m.group(3)))
            stack.append((content_col, new_indent + 4 - content_col))
            out.append(_shift(line, new_indent - indent))
            delta = stack[-1][1]
        elif stack and indent >= stack[-1][0]:
            delta = stack[-1][1]  # continuation (paragraph, code) of the innermost item
            out.append(_shift(line, delta))
        else:
            delta = 0  # lazy continuation or text outside any list
            out.append(line)
        fm = _FENCE.match(out[-1])
        if fm:
            fence = fm.group(1)
            fence_delta = delta
        prev_blank = False
    return "\n".join(out)
