"""Identifier classes, their misses, and the inline identifier style (face, size, tracking, paths only)."""

from __future__ import annotations

from ingest.legibility import class_items, class_misses, class_recall
from ingest.pipeline import render_fingerprint
from ingest.render.fonts import identifier_split
from ingest.render.style import Style
from kb.settings import RenderConfig


def test_curly_quotes_either_way_are_not_part_of_a_path() -> None:
    items = class_items([("See ”/etc/passwd” and “/usr/share/man”.", False)])
    assert items["path"] == [("/etc/passwd",), ("/usr/share/man",)]


def test_regexes_with_slashes_are_code_not_paths() -> None:
    items = class_items([("s/(1[a-z]*)[0-9]*(.*)$/$2===$1/ and ^/git/(.*)$ and /var/www/git/$1", True)])
    assert items["path"] == [("/var/www/git/$1",)]
    assert ("s/(1[a-z]*)[0-9]*(.*)$/$2===$1/",) in items["code"] and ("^/git/(.*)$",) in items["code"]


def test_misses_say_what_ocr_read_instead() -> None:
    items = class_items([("Edit /usr/share/nginx/www and run --dry-run twice: --dry-run.", False)])
    ocr = "Edit fusr/share/nginx/www and run --dry-run twice: -dry-run."
    assert class_recall(items, ocr)["path"] == (0, 1) and class_recall(items, ocr)["option"] == (1, 2)
    miss = class_misses(items, ocr)
    assert miss["path"] == [("/usr/share/nginx/www", "fusr/share/nginx/www")]
    assert miss["option"] == [("--dry-run", "--dry-run")]  # the second one is missing; the closest is the first


def test_paths_only_keeps_options_in_the_body_face() -> None:
    text = "run --force on /var/lib/kb now"
    assert [s for s, ident in identifier_split(text) if ident] == ["--force", "/var/lib/kb"]
    assert [s for s, ident in identifier_split(text, paths_only=True) if ident] == ["/var/lib/kb"]


PLAIN_IDS = RenderConfig(id_bold=False, id_tracking=0.0)  # identifiers drawn like the prose around them


def test_identifier_scale_and_tracking_widen_only_identifiers() -> None:
    plain = Style.from_config(PLAIN_IDS).body()
    assert plain.ident is None
    styled = Style.from_config(RenderConfig(id_scale=1.12, id_tracking=0.04, id_bold=False)).body()
    assert styled.ident is not None and styled.ident.size == 10
    assert styled.measure("/usr/share/man") > plain.measure("/usr/share/man")
    assert styled.measure("read the manual") == plain.measure("read the manual")
    paths = Style.from_config(RenderConfig(id_tracking=0.04, id_kinds="paths", id_bold=False)).body()
    assert paths.measure("--force") == plain.measure("--force")


def test_bold_identifiers_use_the_bold_face() -> None:
    bold = Style.from_config(RenderConfig(id_bold=True, id_tracking=0.0)).body()
    plain = Style.from_config(PLAIN_IDS).body()
    assert bold.ident is not None and bold.ident.size == plain.size
    assert bold.ident.primary.path != plain.primary.path  # the bold file of the body family
    assert bold.measure("/usr/share/man") > plain.measure("/usr/share/man")


def test_new_identifier_fields_at_their_old_values_keep_the_fingerprint() -> None:
    """A store drawn before the identifier fields existed keeps its fingerprint under those old values; the
    bold, tracked default is a change (reindex re-renders)."""
    base = render_fingerprint(PLAIN_IDS, "t")
    same = RenderConfig(id_scale=1.0, id_tracking=0.0, id_kinds="all", id_bold=False)
    assert render_fingerprint(same, "t") == base
    assert render_fingerprint(RenderConfig(id_bold=True, id_tracking=0.0), "t") != base
    assert render_fingerprint(RenderConfig(id_bold=False, id_tracking=0.04), "t") != base
    assert render_fingerprint(RenderConfig(), "t") != base
