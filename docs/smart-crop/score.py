#!/usr/bin/python3
"""How much of each photo's subject a `fit=cover` crop keeps, per gravity.

Usage: docs/smart-crop/score.py BIN [BIN ...]
  Each BIN is an img-proxy binary (e.g. target/release/img-proxy and an
  older build, to compare two versions of `gravity=smart`). Needs Debian's
  python3-pil and python3-numpy, and fetches the photos once into
  ~/.cache/img-proxy-smart-crop (pip download of scikit-image and
  scikit-learn wheels, apt-get download of plasma-workspace-wallpapers).

For every photo, a hand-drawn box around its subject (fractions of the
picture, below); for every crop shape, the share of that box the crop
keeps, divided by the largest share any crop of that shape could keep
(1.00 = as good as possible). The crop's position is found by matching the
output against the whole picture. A number per crop, and the mean.
"""

import glob
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
from PIL import Image

CACHE = os.path.expanduser("~/.cache/img-proxy-smart-crop")
WALLPAPERS = "usr/share/wallpapers"

# name: (where the file comes from, subject box x0, y0, x1, y1)
PHOTOS = {
    "astronaut": ("skimage/data/astronaut.png", (0.30, 0.03, 0.60, 0.35)),  # her face
    "chelsea": ("skimage/data/chelsea.png", (0.28, 0.20, 0.75, 0.85)),  # eyes and nose
    "coffee": ("skimage/data/coffee.png", (0.28, 0.02, 0.72, 0.65)),  # the cup
    "china": ("sklearn/datasets/images/china.jpg", (0.10, 0.05, 0.55, 0.95)),  # the temple
    "flower": ("sklearn/datasets/images/flower.jpg", (0.28, 0.08, 0.72, 0.85)),
    "rocket": ("skimage/data/rocket.jpg", (0.45, 0.10, 0.55, 0.95)),
    "safelanding": (f"{WALLPAPERS}/SafeLanding/contents/images/5120x2880.jpg", (0.27, 0.20, 0.38, 0.65)),
    "fallenleaf": (f"{WALLPAPERS}/FallenLeaf/contents/images/2560x1600.jpg", (0.50, 0.30, 0.90, 0.80)),
    "onestandsout": (f"{WALLPAPERS}/OneStandsOut/contents/images/2560x1600.jpg", (0.60, 0.42, 0.70, 0.58)),
    "kite": (f"{WALLPAPERS}/Kite/contents/images/2560x1600.jpg", (0.62, 0.30, 0.70, 0.42)),
}
# Portrait 3:4, narrow 1:2, wide 12:5.
SHAPES = [(180, 240), (120, 240), (240, 100)]
GRAVITIES = ["center", "smart"]


def fetch():
    """The photos, unpacked under CACHE (once)."""
    os.makedirs(CACHE, exist_ok=True)
    if not glob.glob(f"{CACHE}/skimage/data/*.png"):
        subprocess.run(["pip", "download", "--no-deps", "--only-binary=:all:", "-d", CACHE,
                        "scikit-image", "scikit-learn"], check=True, stdout=subprocess.DEVNULL)
        for wheel in glob.glob(f"{CACHE}/*.whl"):
            with zipfile.ZipFile(wheel) as z:
                for n in z.namelist():
                    if n.startswith(("skimage/data/", "sklearn/datasets/images/")):
                        z.extract(n, CACHE)
    if not os.path.isdir(f"{CACHE}/{WALLPAPERS}"):
        subprocess.run(["apt-get", "download", "plasma-workspace-wallpapers"], cwd=CACHE,
                       check=True, stdout=subprocess.DEVNULL)
        deb = glob.glob(f"{CACHE}/plasma-workspace-wallpapers_*.deb")[0]
        subprocess.run(["dpkg", "-x", deb, CACHE], check=True)


def cover_fractions(w, h, tw, th):
    """The share of the width and height a tw x th cover crop keeps."""
    s = max(tw / w, th / h)
    return min(tw / (w * s), 1.0), min(th / (h * s), 1.0)


def kept(box, ax, ay, fw, fh):
    """Share of `box` inside the crop at anchor (ax, ay)."""
    x0, y0 = ax * (1 - fw), ay * (1 - fh)
    ix = max(0.0, min(box[2], x0 + fw) - max(box[0], x0))
    iy = max(0.0, min(box[3], y0 + fh) - max(box[1], y0))
    return ix * iy / ((box[2] - box[0]) * (box[3] - box[1]))


def best_possible(box, fw, fh):
    steps = np.linspace(0, 1, 101)
    return max(kept(box, ax, ay, fw, fh) for ax in steps for ay in ([0.5] if fh >= 1 else steps))


def locate(whole, crop, fw, fh):
    """The crop's anchor, by matching it against the whole picture at a
    scale where the picture is 160 pixels on its longest side."""
    w, h = whole.size
    s = 160 / max(w, h)
    a = np.asarray(whole.resize((round(w * s), round(h * s)), Image.BOX).convert("L"), dtype=float)
    cw, ch = round(fw * w * s), round(fh * h * s)
    b = np.asarray(crop.convert("L").resize((cw, ch), Image.BOX), dtype=float)
    err, bx, by = min((np.abs(a[y:y + ch, x:x + cw] - b).mean(), x, y)
                      for y in range(a.shape[0] - ch + 1) for x in range(a.shape[1] - cw + 1))
    rx, ry = a.shape[1] - cw, a.shape[0] - ch
    return (bx / rx if rx else 0.5, by / ry if ry else 0.5)


def main():
    bins = sys.argv[1:]
    if not bins:
        sys.exit(__doc__)
    fetch()
    columns = [(b, g) for b in bins for g in GRAVITIES if g == "smart" or b == bins[0]]
    totals = [0.0] * len(columns)
    print("photo          " + " | ".join(f"{tw}x{th}".center(8 * len(columns) - 1) for tw, th in SHAPES))
    print("               " + " | ".join(" ".join(
        f"{g[:3] + ':' + str(bins.index(b) + 1) if len(bins) > 1 else g:>7}" for b, g in columns) for _ in SHAPES))
    n = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, box) in PHOTOS.items():
            src = f"{CACHE}/{path}"
            whole = Image.open(src).convert("RGB")
            fw_fh = [cover_fractions(*whole.size, tw, th) for tw, th in SHAPES]
            cells = []
            for (tw, th), (fw, fh) in zip(SHAPES, fw_fh):
                best = best_possible(box, fw, fh)
                n += 1
                row = []
                for k, (b, g) in enumerate(columns):
                    out = f"{tmp}/{name}-{k}.png"
                    subprocess.run([b, "transform", src, "-o", out, "-W", str(tw), "-H", str(th),
                                    "--fit", "cover", "--gravity", g], check=True)
                    score = kept(box, *locate(whole, Image.open(out), fw, fh), fw, fh) / best
                    totals[k] += score
                    row.append(f"{score:7.2f}")
                cells.append(" ".join(row))
            print(f"{name:14} " + " | ".join(cells))
    print("mean           " + " ".join(f"{t / n:7.2f}" for t in totals)
          + "   (" + ", ".join(f"{g[:3]}:{bins.index(b) + 1} = {g} of {b}" for b, g in columns) + ")")


if __name__ == "__main__":
    main()
