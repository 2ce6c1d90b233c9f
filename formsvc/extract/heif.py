"""Phone photos in HEIF (HEIC): an iPhone's own format, what it sends by mail, AirDrop or a cable (messaging apps
send JPEG). Opened through Pillow by pillow-heif, whose wheel bundles libheif and its HEVC decoder; the rotation and
mirroring the phone recorded are applied on decoding, as the page was shot."""

from __future__ import annotations

from functools import cache

import pillow_heif

# Major brands of HEIF files (ISO/IEC 23008-12): HEVC-coded images and sequences, the generic image brands phones
# also write, and AVIF (AV1 inside, which the bundled libheif cannot decode: Pillow's own AVIF plugin opens it).
_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1",
                     b"avif", b"avis"})


def is_heif(head: bytes) -> bool:
    """From a file's first 12 bytes: its first box's size, "ftyp" and the major brand."""
    return head[4:8] == b"ftyp" and head[8:12] in _BRANDS


@cache
def register() -> None:
    """Teach Pillow to open HEIF files, once a process. Only each image's primary picture: an iPhone's thumbnails,
    depth map and auxiliary images are never read (memory is spent on the page only)."""
    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
