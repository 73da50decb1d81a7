"""The documentation stands alone (issue 13, item 11): every relative link in the
Markdown a user gets points at a file (and heading) that exists, and no page sends the
reader to the project's internal notes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import ROOT

DOCS = sorted(
    [
        *ROOT.glob("docs/**/*.md"),
        ROOT / "README.md",
        *ROOT.glob("*/README.md"),
        *ROOT.glob("examples/**/*.md"),
    ]
)
LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*]", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(md: Path) -> set[str]:
    body = FENCE.sub("", md.read_text(encoding="utf-8"))
    return {_slug(m[1]) for m in re.finditer(r"^#{1,6}\s+(.*)$", body, re.M)}


def _links(md: Path) -> list[str]:
    body = FENCE.sub("", md.read_text(encoding="utf-8"))
    body = re.sub(r"`[^`\n]*`", "", body)  # inline code is not a link
    return [m[1] for m in LINK.finditer(body)]


def test_there_are_docs_to_check():
    names = {p.relative_to(ROOT).as_posix() for p in DOCS}
    assert {"README.md", "docs/rules.md", "docs/trading-risk.md", "policies/README.md"} <= names


@pytest.mark.parametrize("md", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(md):
    broken = []
    for target in _links(md):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (md.parent / path).resolve() if path else md
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif not dest.resolve().is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, f"{md.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize(
    "md",
    [p for p in DOCS if p.is_relative_to(ROOT / "docs") or p.parent.name == "policies"],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_user_docs_cite_no_internal_notes(md):
    text = md.read_text(encoding="utf-8")
    assert not re.search(r"\b(reference|shared)/[\w.-]+\.md", text), md.name


def test_the_practice_page_cites_public_sources():
    text = (ROOT / "docs" / "trading-risk.md").read_text(encoding="utf-8")
    urls = re.findall(r"https://[^\s)]+", text)
    assert len(urls) >= 5
    for rule_type in ("margin_utilization", "stop_before_liquidation", "risk_per_trade",
                      "max_leverage", "min_liquidation_distance", "isolate_on_volatility",
                      "cross_stress", "promote_to_cross"):  # fmt: skip
        assert f"(rules.md#{rule_type})" in text
