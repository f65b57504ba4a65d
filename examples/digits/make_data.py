"""Writes scikit-learn's handwritten digits (1,797 8x8 images, shipped inside the package) as
sequences for lstm-wgpu: each image is 8 steps of 8 pixels (its rows, top to bottom), scaled
to [0, 1]. A seeded shuffle splits 1,400 for training and 397 for testing.

    python3 examples/digits/make_data.py OUT_DIR

writes OUT_DIR/{x_train,x_test}.npy  float32 [8, N, 8]  (time-major [T, B, I])
       OUT_DIR/{y_train,y_test}.npy  int64   [N]        (one class per sequence)
Requires: numpy, scikit-learn."""
import os
import sys

import numpy as np
from sklearn.datasets import load_digits


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "target/digits"
    os.makedirs(out, exist_ok=True)
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)  # [N, 8, 8], rows are steps
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[:1400], order[1400:]
    for name, index in [("train", train), ("test", test)]:
        np.save(os.path.join(out, f"x_{name}.npy"), np.ascontiguousarray(images[index].transpose(1, 0, 2)))
        np.save(os.path.join(out, f"y_{name}.npy"), labels[index])
    print(f"wrote {out}: {len(train)} training and {len(test)} test sequences of 8 steps x 8 pixels")


if __name__ == "__main__":
    main()
