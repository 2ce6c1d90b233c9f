"""Colour dropout: a colour page becomes the grey page the readers see, without its red and purple seal ink.

A unit's round seal and date stamps are red or purple; pens are blue or black; print is black. In grey levels a
red seal is as dark as pen ink and hides digits; in colour it is told apart by its hue. Pixels of saturated red,
magenta or purple are painted paper-white; dark pixels (black print or pen under the seal) are kept. The page's
plain luminance is kept beside the dropout when anything was dropped, so a box whose ink was all coloured (a
number written in red pen, or a seal over an empty box) is seen and sent to a person, never read as blank.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# OpenCV hue is 0..179 (degrees / 2). Red wraps around 0; magenta and purple sit below it. Blue ballpoint
# (~105..125) and black stay.
RED_PURPLE = ((0, 14), (132, 180))
MIN_SATURATION = 70
MIN_VALUE = 70  # darker than this is black ink whatever its tint
MIN_SHARE = 0.0005  # of the page's pixels: less coloured ink than this is scanner noise, not a seal


@dataclass(frozen=True)
class Dropped:
    image: np.ndarray  # grey page without red/purple ink
    luma: np.ndarray | None  # the plain grey page, when any coloured ink was dropped


def seal_mask(rgb: np.ndarray) -> np.ndarray:
    """Pixels of red, magenta or purple ink (bool), from an RGB image."""
    return _seal_mask(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)) > 0


def _seal_mask(hsv: np.ndarray) -> np.ndarray:
    """seal_mask from the page's HSV, 255 where seal ink is (OpenCV's ranges: a colour page is loaded in a few
    hundredths of a second, not a fifth)."""
    mask: np.ndarray = np.zeros(hsv.shape[:2], np.uint8)
    for lo, hi in RED_PURPLE:
        mask = cv2.bitwise_or(mask, cv2.inRange(hsv, (lo, MIN_SATURATION, MIN_VALUE), (hi - 1, 255, 255)))
    return mask


def drop_colour(rgb: np.ndarray) -> Dropped:
    """The grey page with seal ink removed (and its luminance when something was removed)."""
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    mask = _seal_mask(hsv)
    if cv2.countNonZero(mask) < MIN_SHARE * mask.size:
        return Dropped(luma, None)
    # Seal ink's soft edge blends with paper into lighter, less saturated pixels: take a pixel's ring with it.
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    # Where a seal pixel is dark in every channel (its value, the brightest channel, is low), it is print or pen
    # the seal crossed: it stays.
    mask = cv2.bitwise_and(mask, cv2.inRange(hsv[..., 2], MIN_VALUE, 255))
    out = luma.copy()
    out[mask > 0] = 255
    return Dropped(out, luma)


def is_colour(rgb: np.ndarray) -> bool:
    """Does the image hold colour at all (a grey scan saved as RGB does not)?"""
    small = rgb[::8, ::8].astype(np.int16)
    spread = small.max(axis=2) - small.min(axis=2)
    return bool((spread > 40).mean() > MIN_SHARE)
