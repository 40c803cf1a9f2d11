"""The README's stream table is the catalogue in code (`make readme` refreshes it)."""

from pathlib import Path

from modules.stream_catalogue import STREAMS, with_catalogue

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_stream_table_matches_the_catalogue():
    text = README.read_text()
    assert with_catalogue(text) == text, "README's stream table is stale: run `make readme`"


def test_readme_names_every_stream():
    text = README.read_text()
    missing = [name for name in STREAMS if f"`{name}`" not in text]
    assert not missing
