"""QR images (PNG, SVG) and a unit's printable sheet."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from html.parser import HTMLParser

import png
import qrcode

from adapters.qr import QrTarget, png_bytes, render_sheet, svg_bytes, svg_element, unit_sheet
from adapters.qr.images import BORDER, BOX_SIZE, ERROR_CORRECTION
from domain import commands as c
from tests.conftest import ADMIN, County

URL = "http://127.0.0.1:8000/s/k1.o130117.1.3q2-7wF0tmDcLKEh0hHcAw"
SVG_NS = "{http://www.w3.org/2000/svg}"


def modules(url: str) -> list[list[bool]]:
    """The code's modules as qrcode computes them, quiet zone included."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, border=BORDER)
    code.add_data(url)
    code.make(fit=True)
    return [list(row) for row in code.get_matrix()]


def test_a_png_is_a_png_of_a_plausible_size() -> None:
    data = png_bytes(URL)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind, width, height = struct.unpack(">I4sII", data[8:24])
    assert (length, kind) == (13, b"IHDR")
    assert width == height
    assert width % BOX_SIZE == 0
    assert (21 + 2 * BORDER) * BOX_SIZE <= width <= (41 + 2 * BORDER) * BOX_SIZE  # versions 1 to 6


def test_the_png_draws_the_modules_of_the_url() -> None:
    width, _, rows, _ = png.Reader(bytes=png_bytes(URL)).read()
    pixels = [list(row) for row in rows]
    expected = modules(URL)
    assert width == len(expected) * BOX_SIZE
    centre = BOX_SIZE // 2
    drawn = [
        [pixels[y * BOX_SIZE + centre][x * BOX_SIZE + centre] == 0 for x in range(len(expected))]
        for y in range(len(expected))
    ]
    assert drawn == expected  # black (0) exactly where the code has a module


def test_an_svg_parses_as_an_svg_document() -> None:
    data = svg_bytes(URL)
    assert data.startswith(b"<?xml")
    root = ET.fromstring(data)  # noqa: S314 - our own output
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("viewBox")
    assert b"<svg" in data
    assert root.find(f"{SVG_NS}path") is not None


def test_an_inline_svg_is_one_element_without_an_id() -> None:
    element = svg_element(URL)
    assert element.startswith("<svg")
    assert "<?xml" not in element
    assert "id=" not in element
    ET.fromstring(element)  # noqa: S314 - our own output


def test_different_urls_give_different_codes() -> None:
    assert png_bytes(URL) != png_bytes(URL.replace("o130117", "o130118"))


class _Cards(HTMLParser):
    """Counts the sheet's cards and the SVGs inside them; collects every external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.cards = self.svgs_in_cards = self.depth = 0
        self.references: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "section" and "card" in classes:
            self.cards += 1
            self.depth = 1
        elif self.depth and tag == "svg":
            self.svgs_in_cards += 1
        self.references += [v or "" for k, v in attrs if k in {"src", "href"}]

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.depth = 0


def test_the_sheet_lists_the_unit_and_every_active_officer_with_a_code(issued: County) -> None:
    app = issued.app
    app.register_officer(c.RegisterOfficer(badge="100103", officer_name="王新", kind="police", unit_code="PS1"), ADMIN)
    app.register_officer(c.RegisterOfficer(badge="100104", officer_name="周离", kind="police", unit_code="PS1"), ADMIN)
    app.issue_qr(c.IssueQr.model_validate({"subject": "officer", "key": "100104"}), ADMIN)
    app.record_officer_left(c.RecordOfficerLeft(badge="100104", reason="retired"), ADMIN)
    app.transfer_officer(c.TransferOfficer(badge="100201", unit_code="PS1"), ADMIN)

    sheet = unit_sheet(app, "ps1")
    assert sheet.unit is not None
    assert [o.key for o in sheet.officers] == ["100101", "100102", "100201", "F10103"]
    assert sheet.skipped == (("100103", "never issued"),)

    printed: list[QrTarget] = []

    def url_of(target: QrTarget) -> str:
        printed.append(target)
        return f"https://pj.example/s/{target.key}"

    html = render_sheet(sheet, url_of, datetime(2021, 11, 1, tzinfo=UTC))
    assert printed == [sheet.unit, *sheet.officers]
    assert '<meta charset="utf-8">' in html
    assert "size: A4" in html
    for officer in sheet.officers:
        assert officer.key in html
        assert f"<dd>{officer.name}</dd>" in html
    assert "城关派出所" in html
    assert "周离" not in html
    assert "王新" not in html
    assert "2021-11-01 08:00" in html  # Beijing time
    for label in ("姓名", "警号", "编号", "单位", "单位二维码", "辅警"):
        assert label in html
    cards = _Cards()
    cards.feed(html)
    assert cards.cards == 5
    assert cards.svgs_in_cards == 5
    assert cards.references == []  # self-contained: nothing to load
    assert len(re.findall(r"<svg\b", html)) == 5


def test_a_sheet_escapes_what_it_prints(issued: County) -> None:
    app = issued.app
    app.register_officer(
        c.RegisterOfficer(badge="100105", officer_name="<b>张</b>", kind="police", unit_code="PS2"), ADMIN
    )
    app.issue_qr(c.IssueQr.model_validate({"subject": "officer", "key": "100105"}), ADMIN)
    html = render_sheet(unit_sheet(app, "PS2"), lambda t: "https://pj.example/s/x", datetime.now(UTC))
    assert "&lt;b&gt;张&lt;/b&gt;" in html
    assert "<b>张" not in html
