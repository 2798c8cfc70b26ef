"""A unit's printable sheet of QR codes: one self-contained HTML page, A4, a grid of cards.

Each card has the code (inline SVG), and the officer's name, badge and unit (or the
unit's name and code) with Chinese labels. Nothing is loaded from the network: print
it from any browser, or keep it as the record of what was printed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from jinja2 import Environment
from markupsafe import Markup

from adapters.qr.images import svg_element
from adapters.qr.lookup import QrTarget, UnitSheet
from domain.ids import LOCAL_TZ
from domain.values import OfficerKind, QrSubject

_TEMPLATE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>扫码评警二维码 · {{ sheet.unit_name }}（{{ sheet.unit_code }}）</title>
<style>
@page { size: A4; margin: 12mm; }
* { box-sizing: border-box; }
body { margin: 0; color: #111; font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC",
       "Microsoft YaHei", sans-serif; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
header { margin-bottom: 6mm; }
h1 { font-size: 16pt; margin: 0 0 2mm; }
header p, footer { font-size: 8.5pt; color: #444; margin: 0; }
.grid { display: grid; grid-template-columns: repeat(3, 1fr); gap: 5mm; }
.card { border: 0.3mm solid #888; border-radius: 2mm; padding: 3mm; text-align: center;
        break-inside: avoid; page-break-inside: avoid; }
.card.unit { border: 0.6mm solid #b22; }
.tag { font-size: 10pt; font-weight: bold; color: #b22; margin-bottom: 1mm; }
.card svg { display: block; width: 42mm; height: 42mm; margin: 0 auto 2mm; }
dl { display: grid; grid-template-columns: auto auto; justify-content: center; gap: 0.5mm 2mm;
     margin: 0; font-size: 10.5pt; text-align: left; }
dt { color: #555; }
dd { margin: 0; font-weight: bold; }
.hint { margin-top: 1.5mm; font-size: 8pt; color: #666; }
footer { margin-top: 6mm; }
@media screen { body { max-width: 200mm; margin: 8mm auto; padding: 0 4mm; } }
</style>
</head>
<body>
<header>
<h1>扫码评警 · {{ sheet.unit_name }}</h1>
<p>群众扫描二维码，对民警的服务水平、态度和效率进行评价，也可以投诉或提出建议；民警看不到、不参与评价。
Scan a code to rate the officer's service; officers never see who rated them.</p>
</header>
<main class="grid">
{% for card in cards %}
<section class="card {{ card.css }}">
<div class="tag">{{ card.tag }}</div>
{{ card.svg }}
<dl>
{% for label, value in card.fields %}<dt>{{ label }}</dt><dd>{{ value }}</dd>
{% endfor %}</dl>
<div class="hint">扫码评价 · Scan to rate · 第 {{ card.version }} 版</div>
</section>
{% endfor %}
</main>
<footer>{{ sheet.unit_name }}（{{ sheet.unit_code }}）· {{ cards | length }} 个二维码 ·
生成于 {{ generated }}（北京时间）。二维码更换或停用后，此前打印的二维码不能再使用，请重新打印。</footer>
</body>
</html>
"""

_ENV = Environment(autoescape=True, keep_trailing_newline=True)


def render_sheet(sheet: UnitSheet, url_of: Callable[[QrTarget], str], generated_at: datetime) -> str:
    """The HTML page: the unit's own card first (when it has a code), then each officer's by badge."""
    targets = ([sheet.unit] if sheet.unit else []) + list(sheet.officers)
    cards = [_card(target, url_of(target)) for target in targets]
    generated = generated_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    return _ENV.from_string(_TEMPLATE).render(sheet=sheet, cards=cards, generated=generated)


def _card(target: QrTarget, url: str) -> dict[str, object]:
    svg = Markup(svg_element(url))  # noqa: S704 - qrcode's own SVG of a URL, nothing from a user
    if target.subject is QrSubject.UNIT:
        return {
            "css": "unit",
            "tag": "单位二维码",
            "svg": svg,
            "fields": [("单位", target.unit_name), ("代码", target.unit_code)],
            "version": target.version,
        }
    auxiliary = target.officer_kind is OfficerKind.AUXILIARY
    return {
        "css": "officer",
        "tag": "辅警" if auxiliary else "民警",
        "svg": svg,
        "fields": [("姓名", target.name), ("编号" if auxiliary else "警号", target.key), ("单位", target.unit_name)],
        "version": target.version,
    }
