"""Looking for a secret in texts, to prove it is not there."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path


def find_secret(secret: str, texts: Mapping[str, str]) -> list[str]:
    """Where `secret` occurs: "<source>:<line>" for every hit."""
    hits = []
    for source, text in texts.items():
        for number, line in enumerate(text.splitlines(), 1):
            if secret in line:
                hits.append(f"{source}:{number}")
    return hits


def read_files(paths: Iterable[Path]) -> dict[str, str]:
    return {str(p): p.read_text(errors="replace") for p in paths}
