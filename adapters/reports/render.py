"""Renderings of a report: a self-contained HTML page with charts, Markdown, and JSON.

The data comes from :func:`projections.reports.build_report`; nothing here changes a
figure. The HTML page embeds its styles and its SVG charts (drawn by ``pygal``), loads
nothing from the network and prints well, so it can be mailed, archived and opened years
later exactly as published.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pygal
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pygal.style import Style

from domain.rates import FIVE_RATES, ON_TIME

RATE_LABELS: dict[str, tuple[str, str]] = {
    "scan": ("扫码率", "scan rate"),
    "satisfaction": ("满意率", "satisfaction"),
    "callback": ("回访率", "callback"),
    "rectification": ("整改率", "rectification"),
    "implementation": ("落实率", "implementation"),
    "on_time_push": ("推送及时率", "push on time"),
    "on_time_contact": ("联系及时率", "contact on time"),
    "on_time_feedback": ("反馈及时率", "feedback on time"),
    "on_time_callback": ("回访及时率", "callback on time"),
    "on_time_rectification": ("整改及时率", "rectification on time"),
    "on_time_verification": ("核查及时率", "verification on time"),
}
COUNT_LABELS: dict[str, tuple[str, str]] = {
    "encounters": ("应扫", "encounters"),
    "ratings": ("评价", "ratings"),
    "cases_opened": ("立案", "cases"),
    "flagged": ("挂牌", "flagged"),
    "breaches": ("超期", "breaches"),
    "accountability": ("追责", "accountability"),
    "commendations": ("表扬", "commendations"),
}
STEP_LABELS = {
    "push": "推送",
    "contact": "联系当事人",
    "feedback": "反馈结果",
    "callback": "回访",
    "rectification": "整改",
    "verification": "落实核查",
}

_FONTS = "'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', 'PingFang SC', 'Microsoft YaHei', sans-serif"
_CHART_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#243447",
    foreground_strong="#102a43",
    foreground_subtle="#829ab1",
    colors=("#1f6feb", "#2da44e", "#d29922", "#cf222e", "#8250df", "#0a7ea4"),
    font_family=_FONTS,
    title_font_size=16,
    label_font_size=12,
    major_label_font_size=12,
    value_font_size=11,
    legend_font_size=12,
)
_TEMPLATES = Path(__file__).with_name("templates")
_env = Environment(
    loader=FileSystemLoader(_TEMPLATES),
    autoescape=select_autoescape(["html", "j2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def percent(value: float | None) -> str:
    """``93.5%`` or ``n/a``."""
    return "n/a" if value is None else f"{value * 100:.1f}%"


def change(value: float | None) -> str:
    """A change in percentage points: ``▲ 2.3``, ``▼ 1.0``, ``—`` (unchanged) or ``''`` (n/a)."""
    if value is None:
        return ""
    points = value * 100
    if abs(points) < 0.05:
        return "— 0.0"
    return f"{'▲' if points > 0 else '▼'} {abs(points):.1f}"


def _chart_value(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def _formatter(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _percent_chart(
    kind: Any, title: str, labels: list[str], series: dict[str, list[float | None]], **options: Any
) -> str:
    """One SVG chart of rates (0-100 %) in the report's style; ``options`` are the kind's own."""
    chart = kind(
        style=_CHART_STYLE,
        js=[],  # nothing loaded from the network
        width=900,
        range=(0, 100),
        value_formatter=_formatter,
        legend_at_bottom=True,
        disable_xml_declaration=True,
        **options,
    )
    chart.title = title
    chart.x_labels = labels
    for name, values in series.items():
        chart.add(name, [_chart_value(v) for v in values])
    return str(chart.render(is_unicode=True))


def unit_chart(data: dict[str, Any]) -> str:
    """Horizontal bars: each unit's satisfaction and scan rates this period."""
    units = [u for u in data["units"] if u["rates"]["satisfaction"]["denominator"] or u["rates"]["scan"]["denominator"]]
    return _percent_chart(
        pygal.HorizontalBar,
        "各单位满意率与扫码率 (rates per unit)",
        [u["name"] for u in units],
        {RATE_LABELS[name][0]: [u["rates"][name]["value"] for u in units] for name in ("satisfaction", "scan")},
        height=max(260, 34 * len(units) + 120),
        print_values=True,
        print_values_position="top",
        truncate_label=-1,
    )


def trend_chart(data: dict[str, Any]) -> str:
    """Lines: the county's five rates over the recent periods."""
    trend = data["trend"]
    return _percent_chart(
        pygal.Line,
        "全县五个率走势 (county trend)",
        trend["periods"],
        {RATE_LABELS[name][0]: trend["county"][name] for name in FIVE_RATES},
        height=360,
        show_dots=True,
        dots_size=4,
        allow_interruptions=True,
    )


def on_time_chart(data: dict[str, Any]) -> str:
    """Bars: the county's on-time rate of every SLA step, this period and the previous."""
    county = data["county"]["rates"]
    return _percent_chart(
        pygal.Bar,
        "各环节按时率 (on time per step)",
        [RATE_LABELS[name][0] for name in ON_TIME],
        {
            data["period"]: [county[name]["value"] for name in ON_TIME],
            data["previous_period"]: [county[name]["previous"] for name in ON_TIME],
        },
        height=320,
        print_values=True,
    )


def render_html(data: dict[str, Any], *, content_hash: str, published: dict[str, Any] | None = None) -> str:
    """The self-contained HTML page."""
    template = _env.get_template("report.html.j2")
    return template.render(
        r=data,
        content_hash=content_hash,
        published=published or {},
        five=list(FIVE_RATES),
        on_time=list(ON_TIME),
        labels=RATE_LABELS,
        count_labels=COUNT_LABELS,
        step_labels=STEP_LABELS,
        percent=percent,
        change=change,
        charts={"units": unit_chart(data), "trend": trend_chart(data), "on_time": on_time_chart(data)},
    )


def render_markdown(data: dict[str, Any], *, content_hash: str) -> str:
    """The same report as Markdown (for chat groups and mail bodies)."""
    five = list(FIVE_RATES)
    lines = [
        f"# {data['title']}",
        "",
        f"统计期间 {data['period_start']} 至 {data['period_end']}（不含），对比上期 {data['previous_period']}。",
        "",
    ]
    lines += ["## 全县五个率", "", "| 指标 | 本期 | 分子/分母 | 较上期 |", "|---|---|---|---|"]
    for name in [*five, *ON_TIME]:
        rate = data["county"]["rates"][name]
        lines.append(
            f"| {RATE_LABELS[name][0]} | {percent(rate['value'])} | {rate['numerator']}/{rate['denominator']} | "
            f"{change(rate['change'])} |"
        )
    lines += [
        "",
        "## 单位排名",
        "",
        "| 名次 | 单位 | " + " | ".join(RATE_LABELS[n][0] for n in five) + " | 超期 | 挂牌 |",
        "|---|---|" + "---|" * (len(five) + 2),
    ]
    by_code = {u["code"]: u for u in data["units"]}
    for entry in data["ranking"]:
        unit = by_code[entry["code"]]
        cells = " | ".join(
            f"{percent(unit['rates'][n]['value'])} {change(unit['rates'][n]['change'])}".strip() for n in five
        )
        lines.append(
            f"| {entry['rank'] or '—'} | {unit['name']} ({unit['code']}) | {cells} | {unit['counts']['breaches']} | "
            f"{unit['counts']['flagged']} |"
        )
    sections = (
        ("挂牌督办", "flagged", ("case_ref", "unit", "at", "details")),
        ("超期", "breaches", ("case_ref", "unit", "step", "deadline", "breached_at")),
        ("追责", "accountability", ("case_ref", "unit", "at", "details")),
        ("表扬", "commendations", ("case_ref", "unit", "at", "details")),
    )
    for heading, key, fields in sections:
        lines += ["", f"## {heading}（{len(data[key])}）", ""]
        if not data[key]:
            lines.append("本期无。")
            continue
        lines += ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
        lines += ["| " + " | ".join(str(item[f]).replace("|", "/") for f in fields) + " |" for item in data[key]]
    lines += [
        "",
        "---",
        f"计算至日志位置 {data['position']}；内容哈希 SHA-256 `{content_hash}`。",
        f"核验：`pingjing report verify {data['kind']}-{data['period']}`",
        "",
    ]
    seal = data.get("seal")
    if seal:
        lines[-1:-1] = [
            "",
            f"日志封存：位置 {seal['position']}，链哈希 `{seal['chain_hash']}`（{seal['sealed_at']} 封存）。",
            f"任何持有本通报者均可运行 `pingjing audit verify --expect {seal['position']}:{seal['chain_hash']}` 核对："
            "结果为 intact，即说明该位置之前的事件日志自封存以来未被改动。",
        ]
    return "\n".join(lines)


def render_json(data: dict[str, Any], *, content_hash: str, published: dict[str, Any] | None = None) -> str:
    """The data itself, with its hash (and, once published, the publication's details)."""
    document = {"content_hash": content_hash, "publication": published or {}, "report": data}
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
