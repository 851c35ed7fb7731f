"""Tokenisation and vocabulary for tweets, fitted on the training split only.

Ids: 0 is padding, 1 is out-of-vocabulary, 2... are the most frequent training tokens in order of frequency.
Tokenisation is scikit-learn's (lower-casing, a regular-expression tokenizer); the frequency ranking and the
padding are the only parts written here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

PAD_ID = 0
OOV_ID = 1
# Words (with apostrophes), @mentions and #hashtags; punctuation is dropped, as by Keras' Tokenizer.
TOKEN_PATTERN = r"(?u)[@#]?\w[\w']*"


def tokenizer():
    """The analyzer that turns one text into a list of lower-case tokens."""
    return CountVectorizer(lowercase=True, token_pattern=TOKEN_PATTERN).build_analyzer()


@dataclass
class Vocabulary:
    """Token -> id, with ``PAD_ID`` and ``OOV_ID`` reserved."""

    max_size: int = 10_000
    index: dict[str, int] = field(default_factory=dict)

    def fit(self, texts) -> "Vocabulary":
        analyse = tokenizer()
        counts = Counter(token for text in texts for token in analyse(text))
        # Most frequent first; ties broken alphabetically so that the vocabulary is deterministic.
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: self.max_size - 2]
        self.index = {token: i + 2 for i, (token, _) in enumerate(ranked)}
        return self

    def __len__(self) -> int:
        return len(self.index) + 2

    def encode(self, texts, max_len: int) -> np.ndarray:
        """(N, max_len) int64, post-padded with ``PAD_ID`` and truncated to ``max_len``.

        An empty text becomes a single ``OOV_ID`` so that every row holds at least one real token.
        """
        analyse = tokenizer()
        out = np.full((len(texts), max_len), PAD_ID, dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.index.get(token, OOV_ID) for token in analyse(text)][:max_len] or [OOV_ID]
            out[row, : len(ids)] = ids
        return out

    def decode(self, ids) -> list[str]:
        """Tokens for the non-padding ids of one row (``<oov>`` for unknown words)."""
        inverse = {i: token for token, i in self.index.items()}
        return [inverse.get(int(i), "<oov>") for i in ids if int(i) != PAD_ID]
