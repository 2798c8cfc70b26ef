"""QR code images of a scan URL: PNG (pure-Python pypng) and SVG, with no system library.

Error correction is level M (15 % of the code may be lost): a 60-character scan URL
fits a version-4 code of 33 × 33 modules, sparse enough to scan from a badge, sturdy
enough for a scratched print. The images carry no caption; the sheet carries the text.
"""

from __future__ import annotations

import io
from typing import Any

import qrcode
from qrcode.image.pure import PyPNGImage
from qrcode.image.svg import SvgPathFillImage

ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M
#: Pixels (PNG) or tenths of a millimetre (SVG) per module.
BOX_SIZE = 10
#: The quiet zone around the code, in modules (the standard asks for 4).
BORDER = 4


def png_bytes(url: str, *, box_size: int = BOX_SIZE) -> bytes:
    """A black-and-white PNG of the code for ``url``."""
    buffer = io.BytesIO()
    _image(url, PyPNGImage, box_size).save(buffer)
    return buffer.getvalue()


def svg_bytes(url: str) -> bytes:
    """A standalone SVG document (UTF-8, white background) of the code for ``url``."""
    buffer = io.BytesIO()
    _image(url, SvgPathFillImage, BOX_SIZE).save(buffer)
    return buffer.getvalue()


def svg_element(url: str) -> str:
    """The code for ``url`` as one ``<svg>`` element, to inline in an HTML page."""
    image = _image(url, SvgPathFillImage, BOX_SIZE)
    if image.path is not None:
        image.path.attrib.pop("id", None)  # the same id on every card of a sheet would clash
    text: str = image.to_string(encoding="unicode")
    return text


def _image(url: str, factory: type[Any], box_size: int) -> Any:
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, box_size=box_size, border=BORDER, image_factory=factory)
    code.add_data(url)
    code.make(fit=True)
    return code.make_image()
