"""The citizen pages' words, in Chinese (the default) and English.

A page's language comes from ``?lang=`` (which the switch link sets and a cookie remembers),
then the cookie; Chinese otherwise, whatever the browser asks for, since the programme's
citizens read Chinese first. Every text a page shows is here, so a missing translation is a
test failure rather than a page half in one language.
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request

Lang = Literal["zh", "en"]
LANG_COOKIE = "pj_lang"

TEXTS: dict[str, tuple[str, str]] = {
    "site": ("扫码评警", "Rate the police"),
    "bureau": ("县公安局", "County Public Security Bureau"),
    "switch": ("English", "中文"),
    "rate_officer": ("您正在评价民警", "You are rating the officer"),
    "rate_unit": ("您正在评价单位", "You are rating the unit"),
    "badge": ("警号", "Badge"),
    "unit": ("所属单位", "Unit"),
    "kind_police": ("民警", "police officer"),
    "kind_auxiliary": ("辅警", "auxiliary officer"),
    "privacy_title": ("隐私说明", "Your privacy"),
    "privacy_text": (
        "被评价的民警看不到您的评价，也不知道是谁评价的。您留下的电话只用于督察回访，不会交给被评价的民警。",
        "The officer you rate will not see your rating or who gave it. A phone number you leave is used only "
        "for the supervision office's callback and is never given to the officer.",
    ),
    "verdict": ("总体评价", "Overall verdict"),
    "satisfied": ("满意", "Satisfied"),
    "basically_satisfied": ("基本满意", "Basically satisfied"),
    "dissatisfied": ("不满意", "Dissatisfied"),
    "scores": ("分项打分（1 分最低，5 分最高）", "Scores (1 lowest, 5 highest)"),
    "service_score": ("服务水平", "Service level"),
    "attitude_score": ("服务态度", "Attitude"),
    "efficiency_score": ("办事效率", "Efficiency"),
    "comment": ("留言（选填）", "Comment (optional)"),
    "complaint": ("投诉（选填）：遇到了什么问题？", "Complaint (optional): what went wrong?"),
    "suggestion": ("建议（选填）", "Suggestion (optional)"),
    "case_note": (
        "不满意、投诉或建议会立即推送给责任单位办理，督察大队全程监督。",
        "A dissatisfied verdict, a complaint or a suggestion is pushed to the responsible unit at once, "
        "and the supervision brigade follows it to the end.",
    ),
    "phone": ("手机号（选填，用于回访）", "Phone (optional, for a callback)"),
    "phone_hint": (
        "留下电话，单位负责人和督察大队会联系您；也可凭电话后四位查询办理进度。",
        "Leave a number and the unit head and the supervision brigade will call you; its last four digits "
        "let you track the case.",
    ),
    "citizen_name": ("称呼（选填，需同时留电话）", "Your name (optional, with a phone only)"),
    "encounter_code": ("办事凭条上的评价码（选填）", "Rating code from your receipt (optional)"),
    "encounter_hint": (
        "有评价码的评价会标记为已核实。",
        "A rating with the code from your receipt is marked as verified.",
    ),
    "submit": ("提交评价", "Submit"),
    "required": ("必填", "required"),
    "thanks_title": ("感谢您的评价", "Thank you for your rating"),
    "thanks_text": ("您的评价已记录。", "Your rating has been recorded."),
    "thanks_verified": ("您的评价已通过评价码核实。", "Your rating was verified with your code."),
    "case_opened": ("已为您立案，案件编号：", "A case was opened for you. Its reference:"),
    "case_keep": (
        "请保存此编号。责任单位会尽快联系您，督察大队会回访。",
        "Please keep this reference. The unit will contact you soon and the supervision brigade will call back.",
    ),
    "track_link": ("查询办理进度", "Track this case"),
    "track_no_phone": (
        "您没有留下电话，无法在线查询进度；可拨打公安服务热线，报上案件编号查询。",
        "You left no phone, so the case cannot be tracked online; call the police service hotline with the "
        "reference.",
    ),
    "track_title": ("查询办理进度", "Track a case"),
    "track_ask": (
        "为保护您的隐私，请输入评价时留下的手机号后四位。",
        "To protect your privacy, enter the last four digits of the phone you left.",
    ),
    "last4": ("手机号后四位", "Last four digits of your phone"),
    "track_submit": ("查询", "Show progress"),
    "case_ref": ("案件编号", "Case reference"),
    "state": ("当前状态", "Status"),
    "progress": ("办理过程", "Progress"),
    "opened_at": ("受理时间", "Received"),
    "refused_title": ("无法提交", "Not accepted"),
    "code_title": ("二维码无法使用", "This code cannot be used"),
    "error_title": ("出错了", "Something went wrong"),
    "back": ("返回修改", "Go back"),
    "fix_below": ("请修改以下内容后再提交：", "Please correct the following and submit again:"),
    "repeat": (
        "您已在 {last} 评价过{who}。同一设备 24 小时内只能评价同一对象一次，请于 {retry} 后再评价。",
        "You already rated {who} at {last}. One device may rate the same officer or unit once in 24 hours; "
        "please try again after {retry}.",
    ),
    "too_many": (
        "提交过于频繁，请 {seconds} 秒后再试。",
        "Too many submissions from your network; please try again in {seconds} seconds.",
    ),
    "honeypot": (
        "提交未被接受：表单中有一个应保持为空的栏目被填写了。",
        "The form was not accepted: a field that must stay empty was filled in.",
    ),
    "officer_left": ("该民警已离岗，此二维码不再使用。", "This officer has left; the code is no longer in use."),
    "code_unknown": ("评价码不存在，请核对办事凭条上的评价码。", "There is no such rating code; check your receipt."),
    "code_used": ("评价码已被使用或已过期。", "This rating code was already used or has expired."),
    "track_unknown": ("没有这个案件编号。", "There is no case with this reference."),
    "track_wrong": ("手机号后四位不正确。", "The last four digits do not match."),
    "track_paused": (
        "输错次数过多，请一小时后再试。",
        "Too many wrong attempts; please try again in an hour.",
    ),
    "track_not_trackable": (
        "此案件没有留下电话，不能在线查询。",
        "This case has no phone left with it and cannot be tracked online.",
    ),
    "track_erased": (
        "此案件留下的个人信息（电话、称呼）已按规定删除，不能再在线查询；可拨打公安服务热线，报上案件编号查询。",
        "The personal data left with this case (phone, name) were erased as the rules require, so it can no longer "
        "be tracked online; call the police service hotline with the reference.",
    ),
    "unavailable": (
        "系统暂时无法提交，请稍后再试。",
        "The service cannot take submissions right now; try again later.",
    ),
    "bad_verdict": ("请选择总体评价。", "Choose an overall verdict."),
    "bad_score": ("请为{field}选择 1 到 5 分。", "Choose a score from 1 to 5 for {field}."),
    "bad_text": ("{field}过长，最多 {max} 个字。", "{field} is too long: at most {max} characters."),
    "bad_phone": ("手机号格式不正确。", "The phone number is not valid."),
    "bad_name": ("留下称呼时请同时留下手机号。", "Leave a phone together with your name."),
    "bad_code": ("评价码格式不正确（4 到 16 位字母或数字）。", "A rating code is 4 to 16 letters or digits."),
    "bad_last4": ("请输入 4 位数字。", "Enter four digits."),
    "f_comment": ("留言", "The comment"),
    "f_complaint": ("投诉内容", "The complaint"),
    "f_suggestion": ("建议内容", "The suggestion"),
    "f_citizen_name": ("称呼", "The name"),
    "bad_field": ("{field}填写有误。", "{field} is not valid."),
    # The case's states and milestones as a citizen reads them.
    "state_open": ("已受理", "Received"),
    "state_pushed": ("已推送责任单位", "Sent to the responsible unit"),
    "state_contacted": ("责任单位已联系您", "The unit has contacted you"),
    "state_reported": ("责任单位已反馈处理结果", "The unit has reported its result"),
    "state_called_back": ("督察大队已回访", "The supervision brigade has called you back"),
    "state_rectifying": ("正在整改", "Being put right"),
    "state_rectified": ("整改已完成，待核实", "Put right; being verified"),
    "state_verified": ("整改已核实", "The rectification was verified"),
    "state_closed": ("已办结", "Closed"),
    "ev_Opened": ("您的{kind}已受理", "Your {kind} was received"),
    "ev_Pushed": ("已推送至责任单位", "Sent to the responsible unit"),
    "ev_CitizenContacted": ("责任单位已与您联系", "The unit contacted you"),
    "ev_ResultReported": ("责任单位已反馈处理结果", "The unit reported its result"),
    "ev_CallbackRecorded": ("督察大队回访", "The supervision brigade called you back"),
    "ev_CallbackAttemptFailed": ("督察大队回访未接通", "The supervision brigade called but could not reach you"),
    "ev_RectificationOrdered": ("督察大队责令整改", "The supervision brigade ordered it put right"),
    "ev_RectificationReported": ("责任单位报告整改完成", "The unit reported it put right"),
    "ev_Verified": ("督察大队核实整改", "The supervision brigade checked the rectification"),
    "ev_Closed": ("案件办结", "The case was closed"),
    "ev_Reopened": ("案件重新办理", "The case was reopened"),
    "kind_complaint": ("投诉", "complaint"),
    "kind_suggestion": ("建议", "suggestion"),
    "kind_dissatisfaction": ("不满意评价", "dissatisfied rating"),
    "outcome_resolved": ("问题已解决", "resolved"),
    "outcome_not_reached": ("多次回访未能联系到您", "we could not reach you after several calls"),
    "outcome_not_callable": ("未留联系方式", "no contact was left"),
}


def pick_lang(request: Request) -> Lang:
    """The page's language: ``?lang=``, else the remembered choice, else Chinese."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return "en" if asked == "en" else "zh"


def text(lang: Lang, key: str, **values: object) -> str:
    """The text ``key`` in ``lang``, with ``values`` filled in."""
    zh, en = TEXTS[key]
    chosen = en if lang == "en" else zh
    return chosen.format(**values) if values else chosen
