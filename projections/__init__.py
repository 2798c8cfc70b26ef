"""Read models fed from the event log: each can be dropped and rebuilt from the events.

- ``cases``: the case board, the SLA ledger, the case timeline, audit scores, case counts
- ``activity``: encounters and ratings, with encounter attribution, for the scan and
  satisfaction rates
"""

from __future__ import annotations

from projections.activity import ActivityProjection
from projections.base import Projection
from projections.cases import CasesProjection

ALL: tuple[type[Projection], ...] = (CasesProjection, ActivityProjection)
BY_NAME: dict[str, type[Projection]] = {p.name: p for p in ALL}
