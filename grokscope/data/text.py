"""Labelled text for seed 002's sentiment task (Zhu et al.: IMDB / Yelp, a 1-layer BERT-style encoder).

:func:`read_text_table` reads one split into a :class:`TextTable`; :func:`build_tokenizer` learns a WordPiece
vocabulary from training texts and :func:`encode_texts` turns texts into fixed-length id arrays for the trainer.

* Files by suffix: ``.csv``, ``.tsv``, ``.jsonl`` (``.json`` holding JSON lines or a list of records) and
  ``.parquet``, each also compressed (``.csv.gz`` …).  The IMDB Kaggle layout (``review,sentiment``), the Hugging
  Face parquet layout (``text,label``) and the headerless Yelp-polarity layout (``"1","text…"``) work as they are.
* ``hf:NAME[:SPLIT]`` (split ``train`` by default) goes through Hugging Face ``datasets`` offline only: a local
  dataset directory or a dataset already in the local cache.  Nothing is ever downloaded.
* Ids: ``[PAD]`` 0, ``[UNK]`` 1, ``[CLS]`` 2, ``[SEP]`` 3, then the learned word pieces.  A row is ``[CLS]`` +
  word pieces, truncated and right-padded to ``max_len``; no ``[SEP]``, since an example is one segment and the
  classifier reads ``[CLS]``.

No torch here: the trainer turns the int64 arrays into tensors.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from grokscope.errors import ConfigError

if TYPE_CHECKING:
    import tokenizers

PAD_ID, UNK_ID, CLS_ID, SEP_ID = 0, 1, 2, 3
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")  # in id order
TEXT_NAMES = ("text", "review", "content", "sentence", "document")  # detected case-insensitively, in this order
LABEL_NAMES = ("label", "sentiment", "stars", "polarity", "class", "rating")
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zip", ".zst")  # pandas infers these from the suffix
ENCODE_CHUNK = 10_000  # texts per encode_batch call: bounds the memory the tokenizer's encodings hold


@dataclass(frozen=True, eq=False)
class TextTable:
    """One labelled split: texts, class ids and where they came from (equality is identity: it holds arrays)."""

    texts: list[str]  # one per row
    labels: np.ndarray  # (N,) int64 class ids 0..C-1
    classes: tuple[str, ...]  # class id -> original label value as text
    source: dict[str, Any]  # JSON-able provenance: path, format, text_col, label_col, n_rows, sha256, …

    def __post_init__(self):
        if len(self.texts) != len(self.labels):
            raise ConfigError(f"TextTable: {len(self.texts)} texts but {len(self.labels)} labels")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _shown(names: Sequence[str], most: int = 12) -> str:
    """Column names for a message: the first ``most`` of them."""
    return str(list(names)) if len(names) <= most else f"{str(list(names)[:most])[:-1]}, … ({len(names)} columns)]"


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_file(path: Path, fmt: str) -> pd.DataFrame:
    """The file as a frame; delimited files come headerless and all-string (the header row is decided later)."""
    try:
        if fmt in ("csv", "tsv"):
            return pd.read_csv(path, sep="," if fmt == "csv" else "\t", header=None, dtype=str,
                               keep_default_na=False, na_values=[""])  # "NA" is a review, "" is missing
        if fmt == "parquet":
            return pd.read_parquet(path)
        if fmt == "json":  # a list of records, else JSON lines
            try:
                return pd.read_json(path, dtype=False)
            except ValueError:
                pass
        return pd.read_json(path, lines=True, dtype=False)
    except pd.errors.EmptyDataError:
        raise ConfigError(f"empty file: {path} has no rows") from None
    except (ValueError, OSError, EOFError, ImportError, pd.errors.ParserError) as exc:
        raise ConfigError(f"cannot read {path} as {fmt}: {_one_line(exc)}") from exc


def _has_header(frame: pd.DataFrame) -> bool:
    """Whether a delimited file's first row names its columns: a known name, or cells that look like names
    (short, not numbers, not values that recur in their column — Yelp's ``"1","…"`` and ``great,pos`` are data)."""
    first = frame.iloc[0]
    if any(str(cell).strip().lower() in TEXT_NAMES + LABEL_NAMES for cell in first if pd.notna(cell)):
        return True
    return all(pd.notna(cell) and len(cell) <= 64 and not _is_number(cell) and not (frame[col].iloc[1:] == cell).any()
               for col, cell in first.items())


def _position(spec: str, names: list[str] | None, n_cols: int, path: str) -> int:
    """A column given by name, or by position as text ("0", "1")."""
    if names is not None and spec in names:
        return names.index(spec)
    if spec.strip().isdigit() and int(spec) < n_cols:
        return int(spec)
    present = names if names is not None else [str(i) for i in range(n_cols)]
    raise ConfigError(f"column {spec!r} not found in {path}; columns present: {_shown(present)}")


def _detect(names: list[str], candidates: tuple[str, ...], taken: int | None) -> int | None:
    lower = [name.strip().lower() for name in names]
    return next((i for cand in candidates for i, name in enumerate(lower) if name == cand and i != taken), None)


def _columns(frame: pd.DataFrame, names: list[str] | None, text_col: str | None, label_col: str | None,
             path: str) -> tuple[int, int]:
    """Positions of the text and label columns (rules in the module docstring and README)."""
    n_cols = frame.shape[1]
    ti = None if text_col is None else _position(text_col, names, n_cols, path)
    li = None if label_col is None else _position(label_col, names, n_cols, path)
    if names is None and (ti is None or li is None):  # headerless: two columns, the text one is the longer
        if n_cols != 2:
            raise ConfigError(f"{path} has no header and {n_cols} columns; need exactly 2 (text, label) "
                              "or text_col and label_col as positions (\"0\", \"1\")")
        if ti is None and li is None:
            mean_len = [frame[c].dropna().astype(str).str.len().mean() for c in frame.columns]
            ti = int(np.nanargmax(np.nan_to_num(mean_len, nan=-1.0)))
        ti, li = (1 - li, li) if ti is None else (ti, 1 - ti)
    elif names is not None:
        ti = _detect(names, TEXT_NAMES, li) if ti is None else ti
        li = _detect(names, LABEL_NAMES, ti) if li is None else li
        if ti is None or li is None:
            which = " and ".join(w for w, i in (("text", ti), ("label", li)) if i is None)
            raise ConfigError(f"cannot detect the {which} column of {path} among {_shown(names)}; "
                              "give text_col= / label_col= (a name or a position)")
    if ti == li:
        raise ConfigError(f"text and label are the same column ({ti}) in {path}")
    return ti, li


def _label_texts(values: pd.Series) -> tuple[pd.Series, list[str]]:
    """Label values as text (integral numbers as "1", "2") and the classes found, numbers sorted numerically."""
    if not pd.api.types.is_bool_dtype(values):
        numeric = pd.api.types.is_numeric_dtype(values)
        numbers = values if numeric else pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
        if numbers.notna().all():
            as_text = numbers.map(lambda x: str(int(x)) if float(x).is_integer() else repr(float(x)))
            return as_text, sorted(as_text.unique().tolist(), key=float)
    as_text = values.astype(str).str.strip()
    return as_text, sorted(as_text.unique().tolist())


def _read_hf(spec: str) -> tuple[pd.DataFrame, dict[str, Any], Any]:
    """``hf:NAME[:SPLIT]`` through ``datasets``, offline: the frame, its provenance and its features."""
    name, _, split = spec[3:].partition(":")  # the split may be sliced: hf:imdb:train[:2000]
    split = split or "train"
    advice = "nothing is downloaded: save the split as a local .parquet/.csv/.jsonl file and pass its path"
    if not name:
        raise ConfigError(f"{spec!r}: expected hf:NAME or hf:NAME:SPLIT; {advice}")
    os.environ["HF_DATASETS_OFFLINE"] = os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import datasets
    except ImportError:
        raise ConfigError(f"{spec}: Hugging Face datasets is not installed; {advice}") from None
    import huggingface_hub.constants

    # datasets and huggingface_hub read the environment once, on import: set their flags too
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        ds = datasets.load_dataset(name, split=split)
        frame = ds.to_pandas()
    except Exception as exc:  # datasets raises ConnectionError, FileNotFoundError, ValueError, …
        raise ConfigError(f"{spec}: cannot load {name!r} split {split!r} offline ({_one_line(exc)}); {advice}"
                          ) from exc
    source = {"format": "hf", "dataset": name, "split": split, "sha256": None,
              "fingerprint": getattr(ds, "_fingerprint", None)}
    return frame, source, ds.features


def _read_local(path: str, text_col: str | None, label_col: str | None
                ) -> tuple[pd.DataFrame, list[str] | None, dict[str, Any]]:
    """A file by suffix: its rows, its column names (None: a headerless CSV/TSV) and its provenance."""
    file = Path(path)
    stem = file.name.lower()
    stem = next((stem[: -len(c)] for c in COMPRESSIONS if stem.endswith(c)), stem)
    fmt = FORMATS.get(Path(stem).suffix)
    if not file.is_file():
        raise ConfigError(f"no such file: {path}")
    if fmt is None:
        raise ConfigError(f"unknown suffix for {path}; expected one of {', '.join(FORMATS)} (optionally .gz …)")
    if file.stat().st_size == 0:
        raise ConfigError(f"empty file: {path} has zero bytes")
    frame = _read_file(file, fmt)
    source: dict[str, Any] = {"format": fmt, "sha256": _sha256(file)}
    if fmt not in ("csv", "tsv") or not len(frame):
        return frame, [str(c) for c in frame.columns], source
    # A column given by name means a header; positions ("0", "1") work with or without one, so detect it
    # (a header row read as data would become a text and a class of its own).
    names_given = any(c is not None and not c.strip().isdigit() for c in (text_col, label_col))
    source["header"] = names_given or _has_header(frame)
    if not source["header"]:
        return frame, None, source
    return frame.iloc[1:], [str(c).strip() for c in frame.iloc[0]], source


def read_text_table(path: str, text_col: str | None = None, label_col: str | None = None,
                    classes: Sequence[str] | None = None) -> TextTable:
    """Read a labelled text table (CSV/TSV/JSONL/Parquet file or ``hf:NAME[:SPLIT]``) into a :class:`TextTable`.

    Columns not given are detected by name (``text``/``review``/… and ``label``/``sentiment``/…); a headerless
    two-column CSV/TSV takes the longer-on-average column as text.  Rows with empty text or no label are dropped.
    ``classes`` (a training table's) fixes the label mapping, so a test split is read consistently.

    Examples
    --------
    >>> train = read_text_table("IMDB Dataset.csv")              # doctest: +SKIP
    >>> train.classes, train.labels[:3]                          # doctest: +SKIP
    (('negative', 'positive'), array([1, 1, 1]))
    >>> test = read_text_table("test.csv", classes=train.classes)  # doctest: +SKIP
    """
    path, features = os.fspath(path), None  # a pathlib.Path works too
    if path.startswith("hf:"):
        frame, source, features = _read_hf(path)
        names: list[str] | None = [str(c) for c in frame.columns]
    else:
        frame, names, source = _read_local(path, text_col, label_col)
    if len(frame) == 0:
        raise ConfigError(f"empty file: {path} has no rows")
    ti, li = _columns(frame, names, text_col, label_col, path)
    text, label = frame.iloc[:, ti], frame.iloc[:, li]
    keep = text.notna() & (text.astype(str).str.strip() != "") & label.notna() & (label.astype(str).str.strip() != "")
    if not keep.any():
        raise ConfigError(f"no rows with both a text and a label in {path} (column {ti} text, {li} label)")
    label_text, found = _label_texts(label[keep])
    if classes is None:
        classes = tuple(found)
        if len(classes) < 2:
            raise ConfigError(f"one-class labels: every row of {path} is {classes[0]!r}; need at least 2 classes")
    classes = tuple(str(c) for c in classes)
    codes = label_text.map({c: i for i, c in enumerate(classes)})
    if codes.isna().any():
        unknown = sorted(set(label_text[codes.isna()]))[:5]
        raise ConfigError(f"label {unknown[0]!r} in {path} is not among the classes {classes} (unknown: {unknown})")
    text_name, label_name = (names[ti], names[li]) if names is not None else (str(ti), str(li))
    if features is not None and hasattr(features.get(label_name), "names"):  # a ClassLabel: keep its names
        source["label_names"] = list(features[label_name].names)
    source = {"path": path, "text_col": text_name, "label_col": label_name, "n_rows": int(keep.sum()),
              "n_dropped": int((~keep).sum()), **source}
    return TextTable(text[keep].astype(str).tolist(), codes.to_numpy(dtype=np.int64, copy=True), classes, source)


def _train_wordpiece(texts: list[str], vocab_size: int, special_tokens: Sequence[str]) -> tokenizers.Tokenizer:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens),
                                        show_progress=False)
    batches = (texts[i: i + 1000] for i in range(0, len(texts), 1000))
    tokenizer.train_from_iterator(batches, trainer=trainer, length=len(texts))
    return tokenizer


def build_tokenizer(texts: Sequence[str], vocab_size: int) -> tokenizers.Tokenizer:
    """A BERT-style WordPiece tokenizer (lower-cased) trained on ``texts``; the same texts give the same vocabulary.

    Ids 0..3 are ``[PAD] [UNK] [CLS] [SEP]``.  A small corpus may give fewer than ``vocab_size`` ids; a
    ``vocab_size`` below the corpus's alphabet gives more, since every character and its ``##c`` piece is kept (the
    store records the real size as ``task.vocab_size``).  The trainer
    numbers the ``##c`` pieces in hash-map order, which breaks ties between merges differently from run to run
    (huggingface/tokenizers#1794), so a first pass collects those pieces and the real one fixes them, sorted, right
    after the special tokens.  They are vocabulary entries, not added tokens: a text that says ``[CLS]`` is words.

    Examples
    --------
    >>> tok = build_tokenizer(["good movie", "bad movie"] * 5, vocab_size=100)
    >>> tok.encode("Good zebra movie", add_special_tokens=False).tokens
    ['good', '[UNK]', 'movie']
    """
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ConfigError(f"vocab_size {vocab_size} leaves no room past the {len(SPECIAL_TOKENS)} special tokens")
    texts = list(texts)
    if not texts:
        raise ConfigError("no texts to build a vocabulary from")
    from tokenizers import Tokenizer

    first = _train_wordpiece(texts, 1, SPECIAL_TOKENS)  # vocab_size 1: the alphabet and ##c pieces, no merges
    pieces = sorted(token for token in first.get_vocab() if token.startswith("##"))
    spec = json.loads(_train_wordpiece(texts, vocab_size, SPECIAL_TOKENS + tuple(pieces)).to_str())
    spec["added_tokens"] = []  # specials stay in the WordPiece vocabulary only
    tokenizer = Tokenizer.from_str(json.dumps(spec))
    ids = [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS]
    if ids != [PAD_ID, UNK_ID, CLS_ID, SEP_ID]:
        raise RuntimeError(f"special token ids {ids}, expected [0, 1, 2, 3]")
    return tokenizer


def encode_texts(tokenizer: tokenizers.Tokenizer, texts: Sequence[str], max_len: int) -> np.ndarray:
    """Token ids ``[CLS] w1 w2 …`` truncated to ``max_len`` ([CLS] included) and right-padded with ``PAD_ID``.

    The tokenizer's own special tokens, padding and truncation are not used.  Returns (N, max_len) int64.

    Examples
    --------
    >>> tok = build_tokenizer(["good movie", "bad movie"] * 5, vocab_size=100)
    >>> encode_texts(tok, ["good zebra"], max_len=5)[0].tolist() == [CLS_ID, tok.token_to_id("good"), UNK_ID, 0, 0]
    True
    """
    if max_len < 2:
        raise ConfigError(f"max_len {max_len} must be at least 2 ([CLS] and one token)")
    if tokenizer.padding is not None or tokenizer.truncation is not None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(tokenizer.to_str())  # a copy: the caller's settings stay as they were
        tokenizer.no_padding()
        tokenizer.no_truncation()
    texts = list(texts)
    ids = np.full((len(texts), max_len), PAD_ID, dtype=np.int64)  # (N, max_len)
    ids[:, 0] = CLS_ID
    for start in range(0, len(texts), ENCODE_CHUNK):
        encodings = tokenizer.encode_batch(texts[start: start + ENCODE_CHUNK], add_special_tokens=False)
        for row, encoding in enumerate(encodings, start):
            pieces = encoding.ids[: max_len - 1]
            ids[row, 1: 1 + len(pieces)] = pieces
    return ids
