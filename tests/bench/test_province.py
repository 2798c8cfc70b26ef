"""The province simulation (``python -m bench.province``) at its smallest: two counties of two days.

Not the benchmark's figures (they are for ``bench/province.md``), but what the program promises:
every county counted the same way by the loader, the events table and the rebuilt projections,
the report written, and every schema it made dropped afterwards, after a failure too.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from adapters.store import connect_postgres, resolve
from bench import province

pytestmark = pytest.mark.postgres


def leftovers(url: str, run: str) -> list[str]:
    """The run's schemas still in the database."""
    with connect_postgres(resolve(url).env) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)",
                            (f"{province.PREFIX}{run}_",)).fetchall()
    return [str(row[0]) for row in rows]


def test_two_counties_are_loaded_rebuilt_counted_reported_and_dropped(postgres_url: str, tmp_path: Path) -> None:
    out = tmp_path / "province.md"
    p = province.run(["--counties", "2", "--days", "2", "--postgres", postgres_url, "--output", str(out)])

    assert p is not None
    assert [c.alone for c in p.counties] == [True, False]
    for county in p.counties:
        # The loader's head (max notification id), the rows of the events table and the position every
        # projection was rebuilt to are the same number.
        assert county.events > county.registry_events > 0
        assert county.rows == county.events
        assert county.rebuilt_to == county.events
        assert county.ingest_seconds > 0
        assert county.rebuild_seconds > 0
        assert county.log_bytes > 0
        assert county.view_bytes > 0
    assert p.events == sum(c.events for c in p.counties)
    assert p.busiest_hour[1] > 0
    assert p.database_bytes > 0
    assert sorted(p.dropped) == sorted([c.schema for c in p.counties] + [f"{province.PREFIX}{p.run}_empty"])
    assert p.left == []
    assert leftovers(postgres_url, p.run) == []

    text = out.read_text()
    assert "## Where one database stops" in text
    assert f"| c001 | alone | {p.counties[0].events:,} |" in text
    assert f"| c002 | 2 at a time | {p.counties[1].events:,} |" in text
    assert f"{p.ingest_rate:,.0f} events/s" in text


def test_the_schemas_are_dropped_when_a_phase_fails(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[str] = []

    def broken(p: province.Province, say: object) -> None:
        runs.append(p.run)
        raise RuntimeError("the rebuild failed")

    monkeypatch.setattr(province, "rebuild", broken)
    with pytest.raises(RuntimeError, match="the rebuild failed"):
        province.simulate(postgres_url, counties=2, days=1, loaders=2, window=timedelta(hours=6),
                          assumptions=province.Assumptions(), say=lambda _line: None)
    assert runs
    assert leftovers(postgres_url, runs[0]) == []
