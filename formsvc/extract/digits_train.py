"""Train the handwritten digit classifier and write models/digits.npz (run: python -m formsvc.extract.digits_train).

Data that ships in packages, nothing downloaded: scikit-learn's 1,797 real handwritten digits (the first 1,200
for training, the rest held out), synthetic pen strokes (digit_synth, "train" style) and digits in the
installed fonts, all augmented. Seeded, so a rebuild gives the same model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier

from formsvc.extract.digit_synth import draw_digit
from formsvc.extract.digits import MODEL, MODEL_HOG, hog, ink_mask, normalise

FONT_GLOBS = ["/usr/share/fonts/truetype/liberation2/*.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans*.ttf",
              "/usr/share/fonts/truetype/dejavu/DejaVuSerif*.ttf"]
SKLEARN_TRAIN = 1200


def sklearn_digits(part: str) -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    images, target = (d.images[:SKLEARN_TRAIN], d.target[:SKLEARN_TRAIN]) if part == "train" else \
        (d.images[SKLEARN_TRAIN:], d.target[SKLEARN_TRAIN:])
    xs = []
    for img in images:
        big = cv2.resize((img / 16.0).astype(np.float32), (32, 32), interpolation=cv2.INTER_CUBIC)
        xs.append(normalise((big > 0.35).astype(np.uint8)))
    return np.array(xs), np.array(target)


def _augment(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(0, 3))
    if k == 1:
        mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
    elif k == 2 and mask.sum() > 40:
        mask = cv2.erode(mask, np.ones((2, 2), np.uint8)) if rng.random() < 0.3 else mask
    return mask


def synthetic(n_per_digit: int, style: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for digit in range(10):
        for _ in range(n_per_digit):
            img = draw_digit(str(digit), int(rng.integers(22, 48)), rng, style)
            xs.append(normalise(_augment(ink_mask(img), rng)))
            ys.append(digit)
    return np.array(xs), np.array(ys)


def font_digits(n_per_digit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    fonts = sorted({str(p) for g in FONT_GLOBS for p in Path("/").glob(g.lstrip("/"))})
    xs, ys = [], []
    for digit in range(10):
        for _ in range(n_per_digit):
            font = ImageFont.truetype(fonts[int(rng.integers(0, len(fonts)))], int(rng.integers(24, 44)))
            img = Image.new("L", (70, 70), 255)
            ImageDraw.Draw(img).text((15, 5), str(digit), font=font, fill=int(rng.integers(0, 60)))
            arr = np.asarray(img)
            m = cv2.getRotationMatrix2D((35, 35), float(rng.uniform(-10, 10)), 1.0)
            m[0, 1] += float(rng.uniform(-0.3, 0.3))
            arr = cv2.warpAffine(arr, m, (70, 70), borderValue=255)
            xs.append(normalise(_augment(ink_mask(arr), rng)))
            ys.append(digit)
    return np.array(xs), np.array(ys)


def training_set(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    parts = [synthetic(1500, "train", seed), font_digits(250, seed + 1)]
    sx, sy = sklearn_digits("train")
    parts += [(sx, sy)] * 3  # real handwriting weighs more
    return np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def train(x: np.ndarray, y: np.ndarray, seed: int = 0, hidden: int = 256) -> MLPClassifier:
    clf = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=1e-4, max_iter=40, early_stopping=True,
                        random_state=seed, batch_size=256)
    clf.fit(x, y)
    return clf


def save(clf: MLPClassifier, path: Path) -> None:
    arrays = []
    for w, b in zip(clf.coefs_, clf.intercepts_, strict=True):
        arrays += [w.astype(np.float32), b.astype(np.float32)]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, *arrays)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=MODEL)
    ap.add_argument("--out-hog", type=Path, default=MODEL_HOG)
    args = ap.parse_args()
    x, y = training_set()
    pixels = train(x, y, seed=0)
    save(pixels, args.out)
    hogs = train(hog(x), y, seed=1, hidden=128)
    save(hogs, args.out_hog)
    hx, hy = synthetic(200, "test", 99)
    kx, ky = sklearn_digits("test")
    for name, clf, fx in (("pixels", pixels, lambda a: a), ("hog", hogs, hog)):
        print(f"{name}: held-out synthetic (test style) {(clf.predict(fx(hx)) == hy).mean():.3f}, "
              f"held-out scikit-learn handwriting {(clf.predict(fx(kx)) == ky).mean():.3f}")
    print(f"wrote {args.out} ({args.out.stat().st_size} B), {args.out_hog} ({args.out_hog.stat().st_size} B)")


if __name__ == "__main__":
    main()
