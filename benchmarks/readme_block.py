"""Keep a generated block of a README in step with the latest benchmark results."""

from __future__ import annotations

from pathlib import Path


def update_readme(readme: Path, name: str, text: str) -> None:
    """Replace the block between ``<!-- name:start -->`` and ``<!-- name:end -->`` (left alone if absent)."""
    if not readme.exists():
        return
    content = readme.read_text(encoding="utf-8")
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in content or end not in content:
        return
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{text}\n{end}{tail}", encoding="utf-8")
