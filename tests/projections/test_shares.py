"""The cases projection rebuilt in shares: each process folds the cases whose id falls in its share.

A share reads only its cases' events (picked in SQL), writes their rows and a position of its
own; when every share has reached the end, the shares become the one projection again. The
views are those of a rebuild in one process, and a rebuild in shares stopped part way is
finished by whichever runner comes next.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from adapters.settings import Settings
from adapters.store import resolve
from domain.aggregate import event_topics
from domain.case import Case
from projections import ALL
from projections.activity import ActivityProjection
from projections.analyst import rebuild_in_memory
from projections.base import Share
from projections.cases import CasesProjection
from projections.parallel import rebuild_in_parallel
from projections.runner import Runner
from projections.store import ViewStore
from tests.conftest import County
from tests.projections.test_runner import more_life, positions, tell_a_story
from tests.viewdump import dump

CASES = "pingjing.cases"


@pytest.fixture
def database(durable_database: str) -> str:
    """The stores a rebuild in several processes runs on."""
    return durable_database


@pytest.fixture
def history(county: County) -> County:
    """The runner tests' story, and some more cases: enough for every share to have some."""
    tell_a_story(county)
    for _ in range(6):
        county.open_case()
    return county


def tracked(views: ViewStore) -> dict[str, int]:
    """The cases projection's rows in the tracking table."""
    return views.positions_of(CASES)


@pytest.mark.parametrize("count", [2, 3, 4])
def test_the_shares_split_the_cases_and_each_query_reads_its_own_cases_and_every_other_event(
    history: County, count: int
) -> None:
    app = history.app
    views = ViewStore.beside(app)
    whole = Runner(app, views, ALL)
    head = whole.head()
    rows = whole.read(0, head, 100_000)
    case_topics = set(event_topics(Case))
    cases = [row for row in rows if row[3] in case_topics]
    shares = [Share(index, count) for index in range(count)]

    read = {share: Runner(app, views, ALL, share=share).read(0, head, 100_000) for share in shares}

    for share in shares:
        mine = [row for row in cases if share.holds(row[1])]
        assert [r for r in read[share] if r[3] in case_topics] == mine
        assert [r for r in read[share] if r[3] not in case_topics] == [r for r in rows if r[3] not in case_topics]
        for row in mine:
            case_id = UUID(str(row[1]))
            assert all(share.holds(form) for form in (case_id, case_id.hex.upper(), str(case_id)))
    assert sorted(r[0] for share in shares for r in read[share] if r[3] in case_topics) == [r[0] for r in cases]
    assert all(any(r[3] in case_topics for r in read[share]) for share in shares), "the story has too few cases"


def test_a_projection_whose_aggregates_do_not_fold_apart_has_no_shares(history: County) -> None:
    app = history.app
    runner = Runner(app, ViewStore.beside(app), [ActivityProjection])
    with pytest.raises(ValueError, match="cannot be folded in shares"):
        ActivityProjection(runner.views, runner.context, Share(0, 2))
    with pytest.raises(ValueError, match="does not exist"):
        Share(2, 2)


@pytest.mark.parametrize("count", [2, 3])
def test_a_rebuild_in_shares_builds_the_views_a_rebuild_in_one_process_builds(
    history: County, database: str, count: int
) -> None:
    app = history.app
    env = dict(resolve(Settings(database=database).database).env)
    head = app.recorder.max_notification_id()

    done = rebuild_in_parallel(env, [p.name for p in ALL], shares=count)

    views = ViewStore.beside(app)
    assert dump(views) == dump(rebuild_in_memory(app))
    assert tracked(views) == {CASES: head}, "the shares became one position again"
    assert positions(Runner(app, views, ALL)) == {"cases": head, "activity": head}
    by_name = {r.name: r for r in done}
    case_events = sum(1 for row in Runner(app, views, ALL).read(0, head, 100_000) if row[3] in event_topics(Case))
    assert by_name["cases"].events == case_events + by_name["cases"].registry_events


@pytest.mark.parametrize("count", [1, 2])
def test_a_rebuild_in_parallel_drops_what_every_projection_held_before(
    history: County, database: str, count: int
) -> None:
    # A projection not rebuilt in shares is dropped by its own process, beside the others.
    app = history.app
    env = dict(resolve(Settings(database=database).database).env)
    views = ViewStore.beside(app)
    Runner(app, views, ALL).catch_up()
    with views.transaction(commit=True) as cur:
        for table in ("pj_activity_counts", "pj_case_counts"):
            cur.execute(f"INSERT INTO {table} (scope, period) VALUES ('county', '1999-W01')")  # noqa: S608

    rebuild_in_parallel(env, [p.name for p in ALL], shares=count)

    assert dump(views) == dump(rebuild_in_memory(app))


def test_a_rebuild_in_shares_stopped_part_way_is_finished_by_the_next_runner(history: County) -> None:
    app = history.app
    views = ViewStore.beside(app)
    head = app.recorder.max_notification_id()
    Runner(app, views, ALL).reset(shares=2)
    assert tracked(views) == {f"{CASES}/0/2": 0, f"{CASES}/1/2": 0}
    # The processes were stopped: one share half way, the other before its first page, the
    # activity projection a third of the way.
    Runner(app, views, [CasesProjection], share=Share(0, 2), page=5).catch_up(until_position=head // 2)
    Runner(app, views, [ActivityProjection], page=5).catch_up(until_position=head // 3)
    assert 0 < tracked(views)[f"{CASES}/0/2"] < head
    assert views.merge_shares(CASES) is False, "shares at different positions stay shares"

    follower = Runner(app, views, ALL)
    assert positions(follower)["cases"] == 0, "a projection in shares stands where its slowest share does"
    follower.catch_up()

    assert tracked(views) == {f"{CASES}/0/2": head, f"{CASES}/1/2": head}
    assert positions(follower) == {"cases": head, "activity": head}
    assert dump(views) == dump(rebuild_in_memory(app))
    more_life(history)
    follower.catch_up()
    assert dump(views) == dump(rebuild_in_memory(app))


def test_a_runner_folding_shares_goes_on_with_the_whole_projection_once_they_are_merged(history: County) -> None:
    app = history.app
    views = ViewStore.beside(app)
    follower = Runner(app, views, ALL)
    follower.reset(shares=3)
    follower.catch_up()
    assert len([p for p in follower.projections if isinstance(p, CasesProjection)]) == 3
    head = follower.head()

    assert views.merge_shares(CASES) is True
    assert tracked(views) == {CASES: head}
    more_life(history)
    follower.catch_up()

    assert [p.share for p in follower.projections if isinstance(p, CasesProjection)] == [None]
    assert positions(follower) == {"cases": follower.head(), "activity": follower.head()}
    assert dump(views) == dump(rebuild_in_memory(app))


def test_a_rebuild_in_one_process_of_a_projection_stored_in_shares_forgets_the_shares(history: County) -> None:
    app = history.app
    views = ViewStore.beside(app)
    Runner(app, views, ALL).reset(shares=2)
    Runner(app, views, [CasesProjection], share=Share(1, 2)).catch_up()

    only_cases = Runner(app, views, [CasesProjection])
    assert [p.share for p in only_cases.projections] == [Share(0, 2), Share(1, 2)]
    only_cases.reset()
    only_cases.catch_up()

    assert tracked(views) == {CASES: only_cases.head()}
    rebuilt = dump(rebuild_in_memory(app))
    assert {t: dump(views)[t] for t in CasesProjection.tables} == {t: rebuilt[t] for t in CasesProjection.tables}


def test_shares_of_two_layouts_at_once_are_refused_until_a_reset_lays_the_projection_out_again(
    history: County,
) -> None:
    app = history.app
    views = ViewStore.beside(app)
    runner = Runner(app, views, ALL)
    runner.reset(shares=2)
    with views.transaction(commit=True) as cur:
        views.lay_out_shares(cur, CASES, 3)

    confused = Runner(app, views, ALL)
    with pytest.raises(ValueError, match="different layouts"):
        confused.catch_up()
    confused.reset()
    confused.catch_up()

    assert tracked(views) == {CASES: confused.head()}
    assert dump(views) == dump(rebuild_in_memory(app))
