"""Ids that cannot collide: tenant names, cleaned upload names and document ids (issue 10, items 1 and 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kb.names import (
    SEPARATOR,
    clean_file_name,
    doc_id_for,
    is_doc_id,
    tenant_file_name,
    valid_tenant,
)
from kb.settings import ApiKey, Settings

tenants = st.from_regex(r"\A[A-Za-z0-9_]{1,8}(-[A-Za-z0-9_]{1,8}){0,3}\Z").filter(valid_tenant)
# file names as clients send them: any text, with the separator, hyphens and slashes made likely
names = st.text(alphabet=st.sampled_from("ab-~._/ 報告\u00e9e\u0301\uff41\x00") | st.characters(), max_size=40)


@given(st.tuples(tenants, names), st.tuples(tenants, names))
@settings(max_examples=600, deadline=None)
def test_no_two_tenant_name_pairs_share_a_document_id(x: tuple[str, str], y: tuple[str, str]) -> None:
    ids = [doc_id_for(Path("uploads") / tenant_file_name(t, n)) for t, n in (x, y)]
    same_name = clean_file_name(x[1]) == clean_file_name(y[1])
    if x[0] != y[0] or not same_name:
        assert ids[0] != ids[1]
    # the tenant is recovered exactly from its id: the first separator ends it
    for (t, _), i in zip((x, y), ids, strict=True):
        assert i.split(SEPARATOR, 1)[0] == t


@given(names, names)
@settings(max_examples=600, deadline=None)
def test_cleaning_never_merges_two_names(a: str, b: str) -> None:
    base = lambda n: n.replace("\\", "/").split("/")[-1]  # noqa: E731 - only the last component counts
    if base(a) != base(b):
        assert clean_file_name(a) != clean_file_name(b)


@given(names)
@settings(max_examples=400, deadline=None)
def test_clean_names_are_safe_and_stable(raw: str) -> None:
    c = clean_file_name(raw)
    assert is_doc_id(c) and clean_file_name(c) == c and doc_id_for(c) == c
    assert "/" not in c and "\\" not in c and not c.startswith((".", "-")) and "\x00" not in c
    assert len(c.encode()) < 200


def test_the_issue_repro_ids_differ() -> None:
    # tenant `a` uploads `b--c.md`, tenant `a--b` uploads `c.md`: the second tenant cannot exist
    assert tenant_file_name("a", "b--c.md") == "a--b--c.md"
    assert not valid_tenant("a--b")
    with pytest.raises(ValueError):
        tenant_file_name("a--b", "c.md")


@pytest.mark.parametrize("bad", ["a--b", "a-", "-a", "", "x" * 41, "a b", "a/b", "ä"])
def test_tenant_names_are_validated_in_settings(bad: str) -> None:
    with pytest.raises(ValidationError):
        ApiKey(key="k" * 20, role="admin", tenants=[bad])
    with pytest.raises(ValidationError):
        Settings(tenant=bad)
    assert valid_tenant("acme-corp_2") and ApiKey(key="k" * 20, tenants=["acme-corp_2"])


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("報告.md", "報告.md"),
        ("議事録.md", "議事録.md"),
        ("Report.PDF", "Report.PDF"),
        ("../../etc/passwd.md", "passwd.md"),
        ("..\\..\\win.txt", "win.txt"),
    ],
)
def test_canonical_names_are_kept(raw: str, kept: str) -> None:
    assert clean_file_name(raw) == kept


@pytest.mark.parametrize(
    ("raw", "stem", "ext"),
    [
        ("a b.md", "a-b", ".md"),
        ("Résumé 2024.docx", "Résumé-2024", ".docx"),
        ("..", "upload", ""),
        (".hidden.md", "hidden", ".md"),
        ("na\x00me.md", "name", ".md"),
        ("ｒｅｐｏｒｔ.md", "report", ".md"),  # fullwidth letters fold to ASCII
        ("a\uff0fb.md", "b", ".md"),  # a fullwidth slash is a slash
    ],
)
def test_changed_names_get_a_hash_of_the_original(raw: str, stem: str, ext: str) -> None:
    c = clean_file_name(raw)
    assert c.startswith(stem + "~") and c.endswith(ext) and len(c) == len(stem) + 13 + len(ext)
