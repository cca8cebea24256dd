"""The README and the documentation pages link correctly: every relative link of README.md and
docs/ names a file that exists and, with ``#anchor``, a heading of that page, slugged as both
the documentation site (Python-Markdown's toc, what ``mkdocs build --strict`` checks for docs/)
and GitHub (which renders README.md and its links into docs/) slug it. Every page is in the
site's navigation, and the README stays a front door of at most 250 lines."""

import re
import unicodedata
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / 'docs'
PAGES = sorted(DOCS.rglob('*.md'))
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
IMG = re.compile(r'<img [^>]*src="([^"]+)"')


def prose(markdown: str) -> str:
    """The text outside fenced code blocks and inline code spans."""
    markdown = re.sub(r'^```.*?^```', '', markdown, flags=re.S | re.M)
    return re.sub(r'`[^`\n]*`', '', markdown)


def heading_texts(markdown: str) -> list:
    text = re.sub(r'^```.*?^```', '', markdown, flags=re.S | re.M)
    return [m.group(1).strip() for m in re.finditer(r'^#{1,6} +(.*?) *#*$', text, flags=re.M)]


def plain(heading: str) -> str:
    """A heading as rendered text: no code ticks, emphasis or link targets."""
    heading = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading)
    return heading.replace('`', '').replace('**', '')


def mkdocs_slug(text: str) -> str:
    """Python-Markdown's ``toc`` slugify (mkdocs' default)."""
    value = unicodedata.normalize('NFKD', plain(text)).encode('ascii', 'ignore').decode('ascii')
    value = re.sub(r'[^\w\s-]', '', value).strip().lower()
    return re.sub(r'[-\s]+', '-', value)


def github_slug(text: str) -> str:
    """GitHub's heading anchors: lower case, punctuation but ``-`` and ``_`` dropped, each
    space a hyphen."""
    return re.sub(r'[^\w\- ]', '', plain(text).strip().lower()).replace(' ', '-')


def anchors(page: Path, slug) -> set:
    """The anchors of ``page``'s headings; a repeated heading gets ``_1``, ``_2``... (toc)."""
    seen = set()
    for text in heading_texts(page.read_text()):
        base = slug(text)
        name, n = base, 0
        while name in seen:
            n += 1
            name = f'{base}_{n}'
        seen.add(name)
    return seen


def relative_links(page: Path) -> list:
    text = prose(page.read_text())
    links = LINK.findall(text) + IMG.findall(text)
    return [link for link in links if not re.match(r'[a-z][a-z0-9+.-]*:', link)]


@pytest.mark.parametrize(
    'page', [REPO / 'README.md', *PAGES], ids=lambda p: str(p.relative_to(REPO))
)
def test_every_relative_link_resolves_to_a_file_and_a_heading(page):
    problems = []
    for link in relative_links(page):
        path, _, anchor = link.partition('#')
        target = (page.parent / path).resolve() if path else page
        if not target.is_file():
            problems.append(f'{link}: no file {target}')
            continue
        if anchor and target.suffix == '.md':
            for slug in (mkdocs_slug, github_slug):
                if anchor not in anchors(target, slug):
                    problems.append(f'{link}: no heading #{anchor} ({slug.__name__})')
        if page.is_relative_to(DOCS) and not target.is_relative_to(DOCS):
            problems.append(f'{link}: leaves docs/, which the documentation site cannot follow')
    assert not problems, problems


def test_the_link_check_sees_links_and_anchors():
    page = DOCS / 'algorithm.md'
    assert 'performance.md#the-compiled-step-grad_modecompiled' in relative_links(page)
    assert 'docs/demo/restoration_held_out.png' in relative_links(REPO / 'README.md')
    assert 'the-compiled-step-grad_modecompiled' in anchors(DOCS / 'performance.md', mkdocs_slug)
    assert mkdocs_slug('ADE20K transfer (MMSegmentation UperNet)') == (
        'ade20k-transfer-mmsegmentation-upernet'
    )
    assert github_slug('The long point: 10 epochs on 60,000 images') == (
        'the-long-point-10-epochs-on-60000-images'
    )


def nav_pages(nav) -> list:
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_every_top_level_page_is_in_the_site_navigation():
    config = yaml.safe_load((REPO / 'mkdocs.yml').read_text())
    assert config['docs_dir'] == 'docs'
    listed = nav_pages(config['nav'])
    assert all((DOCS / page).is_file() for page in listed), listed
    assert {p.name for p in DOCS.glob('*.md')} <= set(listed)
    assert config['validation']['links']['anchors'] == 'warn'  # an error under --strict


def test_the_readme_is_a_front_door():
    lines = (REPO / 'README.md').read_text().splitlines()
    assert len(lines) <= 250, len(lines)
