"""Output formats the commands share."""

from __future__ import annotations

import pytest

from vsearch_app.cli.options import format_bytes


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 KB"), (4416, "4.4 KB"), (3_300_000, "3.3 MB"),
     (4_464_000_000, "4.5 GB"), (2_500_000_000_000, "2.5 TB")],
)  # fmt: skip
def test_sizes_read_in_decimal_units(size, shown):
    assert format_bytes(size) == shown
