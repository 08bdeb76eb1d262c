"""Write scikit-learn's bundled 8x8 handwritten digits as PNG files, one folder a digit.

The digits ship inside scikit-learn, so this needs no download:

    python corpora/make_digits.py corpora/digits
    semhash index corpora/digits

Each image is saved as an 8-bit greyscale PNG (the 0..16 ink levels scaled to 0..255),
named by its position in the dataset, under a folder named by its digit (the label).
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def write_digits(folder):
    digits = load_digits()
    folder = Path(folder)
    for position, (image, target) in enumerate(zip(digits.images, digits.target)):
        label_folder = folder / str(target)
        label_folder.mkdir(parents=True, exist_ok=True)
        pixels = np.round(image * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).save(label_folder / f"{position:04d}.png")
    return len(digits.images)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):  # --help too: not a folder to write into
        sys.exit("usage: python corpora/make_digits.py OUTPUT_FOLDER")
    print(f"wrote {write_digits(sys.argv[1])} digit images under {sys.argv[1]}")
