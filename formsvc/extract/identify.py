"""Stage 2, identify: read the page's QR payload (zxing-cpp) and where the code sits on the image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import zxingcpp

from formsvc.errors import InputError
from formsvc.payload import PagePayload


@dataclass(frozen=True)
class Identified:
    payload: PagePayload
    corners: np.ndarray  # 4x2: top-left, top-right, bottom-right, bottom-left of the QR in image pixels


def identify(image: np.ndarray) -> Identified | None:
    for result in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
                                         try_rotate=True,
                                         try_downscale=True):
        try:
            payload = PagePayload.decode(result.text)
        except InputError:
            continue
        pos = result.position
        corners = np.array([[pos.top_left.x, pos.top_left.y], [pos.top_right.x, pos.top_right.y],
                            [pos.bottom_right.x, pos.bottom_right.y], [pos.bottom_left.x, pos.bottom_left.y]],
                           dtype=np.float32)
        return Identified(payload, corners)
    return None
