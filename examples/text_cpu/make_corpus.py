"""Write a synthetic review corpus (CSV, the IMDB layout `review,sentiment`) for examples/text_cpu.

Each review is 20 words: filler words w0…w299 and 3–7 (odd) sentiment words drawn from p0…p29 (positive) and
n0…n29 (negative) with equal odds; the label is the majority polarity, so a classifier must weigh several words
against each other, and a memorizing one can fit the training reviews by their filler alone.

    python make_corpus.py N OUT.csv [SEED]
"""

import sys

import numpy as np
import pandas as pd

N_FILLER, N_SENTIMENT, LENGTH = 300, 30, 20


def corpus(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    filler = [f"w{i}" for i in range(N_FILLER)]
    positive, negative = [f"p{i}" for i in range(N_SENTIMENT)], [f"n{i}" for i in range(N_SENTIMENT)]
    rows = []
    for _ in range(n):
        m = rng.integers(3, 8) | 1  # 3, 5 or 7 sentiment words: an odd count, never a tie
        n_pos = rng.binomial(m, 0.5)
        words = [*rng.choice(filler, LENGTH - m), *rng.choice(positive, n_pos), *rng.choice(negative, m - n_pos)]
        rng.shuffle(words)
        rows.append((" ".join(words), "positive" if 2 * n_pos > m else "negative"))
    return pd.DataFrame(rows, columns=["review", "sentiment"])


if __name__ == "__main__":
    corpus(int(sys.argv[1]), int(sys.argv[3]) if len(sys.argv) > 3 else 0).to_csv(sys.argv[2], index=False)
