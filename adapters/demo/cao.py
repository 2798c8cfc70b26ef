"""The Cao case (曹某案, November 2021), told as the seed tells it.

曹某 was beaten in a dispute over a vehicle; the handling unit did not deal with it in
time and 曹某, distraught, smashed every window of the house. The family complained by
scanning the unit's code; the supervision brigade called back at once and put the case
under listed supervision; after persistent supervision and repeated contact the unit
concluded the case, the officer in charge received a bureau-wide criticism notice, and
the complainant, satisfied, sent a silk banner to the scan-to-rate centre.
"""

from __future__ import annotations

from datetime import date

from adapters.demo.sim import CITIZEN, County, Simulation, local
from domain import commands as c
from domain.application import Context
from domain.usecases import Receipt
from domain.values import Actor, Role

CAO_DAY = date(2021, 11, 9)
CAO_UNIT = "LSPS02"
CAO_PHONE = "13931508866"

COMPLAINT = (
    "家人曹某因车辆纠纷被人打伤,报案后办案单位迟迟未处理,至今没有结果。"
    "曹某情绪失控,把家里的玻璃全砸碎了。请求尽快依法处理。"
)


def tell_cao_case(sim: Simulation, county: County) -> None:
    """Schedule the Cao case: the family's complaint, and everything that followed from it."""
    brigade = Context(Actor(county.officers["LSDC"][0], Role.SUPERVISOR))
    head = Context(Actor(county.heads[CAO_UNIT], Role.UNIT_HEAD))
    officer_in_charge = county.officers[CAO_UNIT][1]
    rating = c.SubmitRating(
        target="unit",
        key=CAO_UNIT,
        verdict="dissatisfied",
        service_score=1,
        attitude_score=2,
        efficiency_score=1,
        complaint=COMPLAINT,
        phone=CAO_PHONE,
        citizen_name="曹某家属",
    )

    def follow(receipt: Receipt) -> None:
        ref = receipt.case_ref or ""
        sim.result.cao_ref = ref
        sim.result.cases += 1
        day = CAO_DAY.day
        steps: list[tuple[int, int, int, c.Command, Context]] = [
            (
                day,
                21,
                5,
                c.RecordSupervision(
                    ref=ref, target="citizen", note="督察大队第一时间回访投诉人家属,了解案情和诉求,安抚情绪"
                ),
                brigade,
            ),
            (day, 21, 20, c.FlagCase(ref=ref, reason="群众投诉案件久拖未办,当事人情绪失控,挂牌督办"), brigade),
            (
                day + 1,
                8,
                30,
                c.RecordSupervision(ref=ref, target="unit", note="督促办案单位当日联系当事人,制定办理方案,限期办结"),
                brigade,
            ),
            (day + 1, 9, 40, c.ContactCitizen(ref=ref, note="所长与曹某及家属当面沟通,说明案件办理进度,致歉"), head),
            (
                day + 2,
                16,
                0,
                c.RecordSupervision(ref=ref, target="citizen", note="再次与当事人沟通联系,通报案件进展"),
                brigade,
            ),
            (
                day + 3,
                10,
                30,
                c.RecordSupervision(ref=ref, target="citizen", note="第三次与当事人沟通,当事人情绪稳定"),
                brigade,
            ),
            (
                day + 3,
                17,
                30,
                c.ReportResult(ref=ref, result="案件已依法办结:对殴打曹某的违法行为人依法处理,车辆纠纷经调解达成协议"),
                head,
            ),
            (
                day + 6,
                10,
                0,
                c.RecordCallback(ref=ref, satisfied=True, note="督察大队回访:投诉人对处理结果表示认可"),
                brigade,
            ),
            (
                day + 6,
                15,
                0,
                c.RecordAccountability(
                    ref=ref,
                    badge=officer_in_charge,
                    measure="criticism_notice",
                    note="主办民警办案不及时,给予全局通报批评",
                ),
                brigade,
            ),
            (
                day + 7,
                9,
                0,
                c.CloseCase(
                    ref=ref, resolution="案件办结,主办民警全局通报批评,投诉人认可处理结果", citizen_accepted=True
                ),
                brigade,
            ),
            (
                day + 13,
                10,
                0,
                c.RecordCommendation(
                    ref=ref, kind="banner", unit_code="LSDC", note="投诉人专门向扫码评警中心送上一面锦旗表示感谢"
                ),
                brigade,
            ),
        ]
        for d, hour, minute, command, ctx in steps:
            sim.at(local(CAO_DAY.replace(day=d), hour, minute), command, ctx, force=True)

    sim.at(local(CAO_DAY, 20, 40), rating, CITIZEN, follow, force=True)
