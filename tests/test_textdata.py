"""Text tables and WordPiece ids for seed 002's IMDB/Yelp task: known answers on a synthetic corpus."""

import csv
import doctest
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grokscope.data.text import (
    CLS_ID,
    PAD_ID,
    SEP_ID,
    UNK_ID,
    TextTable,
    build_tokenizer,
    encode_texts,
    read_text_table,
)
from grokscope.errors import ConfigError

POSITIVE = "great wonderful superb moving brilliant charming".split()
NEGATIVE = "awful boring terrible dull clumsy tedious".split()
FILLER = "the movie plot acting film story was and a its".split()


def corpus(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Synthetic reviews: filler words plus words of the review's sentiment; columns text, label (str)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    texts = [" ".join(rng.choice(FILLER + (POSITIVE if y else NEGATIVE), size=rng.integers(5, 15))).capitalize()
             for y in labels]
    return pd.DataFrame({"text": texts, "label": np.where(labels == 1, "positive", "negative")})


def write(frame: pd.DataFrame, path: Path, **kw) -> str:
    fmt = path.name.split(".")[1]
    if fmt in ("csv", "tsv"):
        frame.to_csv(path, index=False, sep="," if fmt == "csv" else "\t", **kw)
    elif fmt in ("jsonl", "json"):
        frame.to_json(path, orient="records", lines=True, **kw)
    else:
        frame.to_parquet(path, **kw)
    return str(path)


def error(call, *args, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        call(*args, **kw)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


@pytest.fixture
def df():
    return corpus()


# ---------------------------------------------------------------- formats and layouts


@pytest.mark.parametrize("name", [
    "reviews.csv",
    "reviews.tsv",
    "reviews.jsonl",
    "reviews.json",        # JSON lines under a .json suffix
    "reviews.parquet",
    "reviews.csv.gz",      # compression inferred from the suffix
])
def test_every_format_gives_the_same_table(tmp_path, df, name):
    table = read_text_table(write(df, tmp_path / name))
    assert table.texts == df.text.tolist()
    assert table.classes == ("negative", "positive")
    np.testing.assert_array_equal(table.labels, (df.label == "positive").astype(np.int64))
    assert table.labels.dtype == np.int64
    assert table.source["text_col"] == "text" and table.source["label_col"] == "label"
    assert table.source["n_rows"] == 200 and table.source["path"] == str(tmp_path / name)
    assert len(table.source["sha256"]) == 64
    assert table.source["format"] == name.split(".")[1]


def test_json_list_of_records(tmp_path, df):
    df.to_json(tmp_path / "r.json", orient="records")
    assert read_text_table(str(tmp_path / "r.json")).texts == df.text.tolist()


def test_imdb_kaggle_layout(tmp_path, df):
    imdb = df.rename(columns={"text": "review", "label": "sentiment"})
    table = read_text_table(write(imdb, tmp_path / "IMDB Dataset.csv"))
    assert table.classes == ("negative", "positive")
    assert table.source["text_col"] == "review" and table.source["label_col"] == "sentiment"
    assert table.labels.tolist() == [int(s == "positive") for s in imdb.sentiment]


def test_hf_parquet_layout_has_numeric_classes(tmp_path, df):
    hf = df.assign(label=(df.label == "positive").astype(int))
    table = read_text_table(write(hf, tmp_path / "train-00000-of-00001.parquet"))
    assert table.classes == ("0", "1") and table.labels.tolist() == hf.label.tolist()


def test_headerless_yelp_layout(tmp_path, df):
    yelp = pd.DataFrame({"polarity": np.where(df.label == "positive", 2, 1), "text": df.text})
    path = write(yelp, tmp_path / "train.csv", header=False, quoting=csv.QUOTE_ALL)  # "1","review…"
    table = read_text_table(path)
    assert table.classes == ("1", "2") and table.texts == df.text.tolist()
    assert table.labels.tolist() == (yelp.polarity - 1).tolist()
    assert (table.source["text_col"], table.source["label_col"], table.source["header"]) == ("1", "0", False)
    # the recorded columns read the file again the same way
    again = read_text_table(path, table.source["text_col"], table.source["label_col"])
    assert again.texts == table.texts and again.labels.tolist() == table.labels.tolist()


def test_headerless_with_word_labels_is_not_taken_for_a_header(tmp_path):
    rows = pd.DataFrame({"t": ["fine film", "dull plot", "great cast"], "y": ["pos", "neg", "pos"]})
    table = read_text_table(write(rows, tmp_path / "r.tsv", header=False))
    assert table.texts == ["fine film", "dull plot", "great cast"] and table.classes == ("neg", "pos")


def test_names_are_detected_case_insensitively(tmp_path, df):
    table = read_text_table(write(df.rename(columns={"text": "Sentence", "label": "Stars"}), tmp_path / "r.csv"))
    assert table.source["text_col"] == "Sentence" and table.source["label_col"] == "Stars"


@pytest.mark.parametrize("text_col, label_col", [
    ("body", "target"),    # names
    ("0", "1"),            # positions in a file with names
    ("body", None),        # one given, the other … not detectable: see the error test
])
def test_explicit_columns(tmp_path, df, text_col, label_col):
    path = write(df.rename(columns={"text": "body", "label": "target"}), tmp_path / "r.parquet")
    if label_col is None:
        assert "label column" in error(read_text_table, path, text_col, label_col)
        return
    table = read_text_table(path, text_col, label_col)
    assert table.texts == df.text.tolist() and table.classes == ("negative", "positive")


def test_positions_in_a_headerless_file(tmp_path, df):
    path = write(df[["label", "text"]], tmp_path / "r.csv", header=False)
    table = read_text_table(path, text_col="1", label_col="0")
    assert table.texts == df.text.tolist() and table.source["header"] is False
    assert read_text_table(path, text_col="1").labels.tolist() == table.labels.tolist()  # the other column


def test_positions_in_a_file_with_a_header_skip_the_header(tmp_path, df):
    """The IMDB layout (review,sentiment) read by position: the header row is not a text of class 'sentiment'."""
    path = write(df.rename(columns={"text": "review", "label": "sentiment"}), tmp_path / "imdb.csv")
    table = read_text_table(path, text_col="0", label_col="1")
    assert table.source["header"] is True and table.classes == ("negative", "positive")
    assert table.texts == df.text.tolist() and (table.source["text_col"], table.source["label_col"]) == (
        "review", "sentiment")


def test_numeric_labels_sort_numerically_and_match_across_formats(tmp_path, df):
    stars = df.assign(label=np.where(df.label == "positive", 10, 2))
    from_csv = read_text_table(write(stars, tmp_path / "r.csv"))
    from_jsonl = read_text_table(write(stars.assign(label=stars.label.astype(str)), tmp_path / "r.jsonl"))
    assert from_csv.classes == from_jsonl.classes == ("2", "10")
    assert from_csv.labels.tolist() == from_jsonl.labels.tolist() == (stars.label == 10).astype(int).tolist()


def test_rows_without_text_or_label_are_dropped(tmp_path):
    rows = pd.DataFrame({"text": ["good", "", "  ", None, "bad", "NA", "odd"],
                         "label": ["pos", "pos", "neg", "neg", "neg", "pos", None]})
    table = read_text_table(write(rows, tmp_path / "r.csv"))
    assert table.texts == ["good", "bad", "NA"]  # "NA" is a text, not a missing value
    assert table.labels.tolist() == [1, 0, 1] and (table.source["n_rows"], table.source["n_dropped"]) == (3, 4)


def test_classes_from_training_map_a_test_file(tmp_path, df):
    train = read_text_table(write(df, tmp_path / "train.csv"))
    positives = df[df.label == "positive"]
    test = read_text_table(write(positives, tmp_path / "test.csv"), classes=train.classes)  # one class is fine
    assert test.classes == train.classes and set(test.labels.tolist()) == {1}
    neutral = pd.concat([positives, pd.DataFrame({"text": ["meh"], "label": ["neutral"]})])
    message = error(read_text_table, write(neutral, tmp_path / "test2.csv"), classes=train.classes)
    assert "'neutral'" in message and "negative" in message


def test_table_checks_its_lengths():
    with pytest.raises(ConfigError, match="2 texts but 1 labels"):
        TextTable(["a", "b"], np.zeros(1, np.int64), ("0", "1"), {})


# ---------------------------------------------------------------- errors: one line naming the problem


def test_errors_name_the_problem_in_one_line(tmp_path, df):
    (tmp_path / "zero.csv").write_bytes(b"")
    (tmp_path / "header_only.csv").write_text("text,label\n")
    (tmp_path / "notes.txt").write_text("text,label\na,b\n")
    (tmp_path / "ragged.csv").write_text("a,b\nc,d\ne,f,g,h\n")
    (tmp_path / "bad.parquet").write_bytes(b"not a parquet file at all")
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip")
    (tmp_path / "three.csv").write_text('"1","a title","a body"\n"2","t","b"\n')
    (tmp_path / "jsonl.jsonl").write_text('{"text": "a", "label": 1}\n{oops\n')
    cases = [  # (path, kwargs, fragment)
        (tmp_path / "missing.csv", {}, "no such file"),
        (tmp_path / "notes.txt", {}, "unknown suffix"),
        (tmp_path / "zero.csv", {}, "empty file"),
        (tmp_path / "header_only.csv", {}, "empty file"),
        (tmp_path / "ragged.csv", {}, "cannot read"),
        (tmp_path / "bad.parquet", {}, "cannot read"),
        (tmp_path / "bad.csv.gz", {}, "cannot read"),
        (tmp_path / "jsonl.jsonl", {}, "cannot read"),
        (tmp_path / "three.csv", {}, "exactly 2"),
        (write(df, tmp_path / "r.csv"), {"text_col": "body"}, "columns present: ['text', 'label']"),
        (write(df.set_axis(["body", "target"], axis=1), tmp_path / "o.csv"), {}, "cannot detect the text and label"),
        (write(df.assign(text=""), tmp_path / "blank.csv"), {}, "no rows with both a text and a label"),
        (write(df.assign(label="positive"), tmp_path / "one.csv"), {}, "one-class labels: every row"),
        (write(df, tmp_path / "same.csv"), {"text_col": "text", "label_col": "text"}, "same column"),
        (write(pd.DataFrame({f"c{i}": ["x"] for i in range(30)}), tmp_path / "wide.parquet"), {}, "(30 columns)"),
    ]
    for path, kw, fragment in cases:
        assert fragment in error(read_text_table, str(path), **kw), (path, kw)


# ---------------------------------------------------------------- hf: offline only


@pytest.fixture
def offline_datasets(monkeypatch, tmp_path):
    """datasets with its cache in tmp_path; the offline flags read_text_table sets are undone afterwards."""
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants

    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(var, "1")
    for module, attr in ((datasets.config, "HF_HUB_OFFLINE"), (datasets.config, "HF_DATASETS_OFFLINE"),
                         (huggingface_hub.constants, "HF_HUB_OFFLINE"),
                         (datasets.config, "HF_DATASETS_CACHE")):
        monkeypatch.setattr(module, attr, getattr(module, attr))
    datasets.config.HF_DATASETS_CACHE = tmp_path / "hf-cache"
    return datasets


def test_hf_local_directory(tmp_path, df, offline_datasets):
    root = tmp_path / "imdb_local"
    (root / "data").mkdir(parents=True)
    hf = df.assign(label=(df.label == "positive").astype(int))
    hf[:150].to_parquet(root / "data" / "train-00000-of-00001.parquet")
    hf[150:].to_parquet(root / "data" / "test-00000-of-00001.parquet")
    train = read_text_table(f"hf:{root}")
    test = read_text_table(f"hf:{root}:test", classes=train.classes)
    assert train.texts == hf.text[:150].tolist() and test.texts == hf.text[150:].tolist()
    assert train.classes == ("0", "1") and test.labels.tolist() == hf.label[150:].tolist()
    assert train.source["format"] == "hf" and train.source["split"] == "train" and test.source["split"] == "test"
    assert train.source["dataset"] == str(root) and train.source["fingerprint"]
    assert read_text_table(f"hf:{root}:train[:10]").texts == hf.text[:10].tolist()  # a sliced split
    assert "offline" in error(read_text_table, f"hf:{root}:validation")


def test_hf_class_label_names_are_kept(tmp_path, df, offline_datasets):
    root = tmp_path / "labelled"
    root.mkdir()
    hf = df.assign(label=(df.label == "positive").astype(int))
    features = offline_datasets.Features({"text": offline_datasets.Value("string"),
                                          "label": offline_datasets.ClassLabel(names=["neg", "pos"])})
    offline_datasets.Dataset.from_pandas(hf, features=features).to_parquet(root / "train.parquet")
    table = read_text_table(f"hf:{root}")
    assert table.classes == ("0", "1") and table.source["label_names"] == ["neg", "pos"]


def test_hf_name_not_available_offline_fails_fast(offline_datasets):
    start = time.perf_counter()
    message = error(read_text_table, "hf:grokscope-no-such-user/no-such-dataset-xyz:train")
    assert time.perf_counter() - start < 10
    assert "offline" in message and "nothing is downloaded" in message and "local" in message
    assert "expected hf:NAME" in error(read_text_table, "hf:")


def test_hf_without_datasets_installed(monkeypatch):
    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` raises ImportError
    message = error(read_text_table, "hf:imdb")
    assert "not installed" in message and "nothing is downloaded" in message


# ---------------------------------------------------------------- tokenizer and ids


def test_tokenizer_is_deterministic_with_bert_special_ids(df):
    first, second = build_tokenizer(df.text, 300), build_tokenizer(df.text, 300)
    assert first.get_vocab() == second.get_vocab()
    assert [first.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]")] == [PAD_ID, UNK_ID, CLS_ID, SEP_ID]
    assert (PAD_ID, UNK_ID, CLS_ID, SEP_ID) == (0, 1, 2, 3)
    assert first.get_vocab_size() <= 300
    assert all(first.token_to_id(w) is not None for w in POSITIVE + NEGATIVE + FILLER)  # whole words learned


def test_encode_known_answer():
    tok = build_tokenizer(["good movie", "bad movie", "good good film"] * 5, vocab_size=200)
    good, bad, movie, film = (tok.token_to_id(w) for w in ("good", "bad", "movie", "film"))
    ids = encode_texts(tok, ["Good MOVIE", "bad zebra film", "", "good " * 10], max_len=6)
    assert ids.shape == (4, 6) and ids.dtype == np.int64
    assert ids.tolist() == [
        [CLS_ID, good, movie, PAD_ID, PAD_ID, PAD_ID],  # lower-cased, right-padded
        [CLS_ID, bad, UNK_ID, film, PAD_ID, PAD_ID],     # an unseen word is [UNK]
        [CLS_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID],  # empty text: [CLS] alone
        [CLS_ID, good, good, good, good, good],           # truncated: [CLS] counts in max_len
    ]
    assert encode_texts(tok, [], max_len=4).shape == (0, 4)
    # a text that spells special tokens gets no special ids: they are not added tokens
    assert encode_texts(tok, ["good [PAD] [CLS] [SEP] movie"], max_len=12)[0].tolist() == [
        CLS_ID, good] + [UNK_ID] * 9 + [movie]


def test_encode_ignores_the_tokenizers_own_padding_and_truncation():
    tok = build_tokenizer(["good movie", "bad movie"] * 5, vocab_size=100)
    plain = encode_texts(tok, ["good movie bad", "bad"], max_len=8)
    tok.enable_padding(length=20, pad_id=3)
    tok.enable_truncation(max_length=1)
    assert encode_texts(tok, ["good movie bad", "bad"], max_len=8).tolist() == plain.tolist()
    assert tok.padding is not None  # the caller's tokenizer is left as it was


def test_tokenizer_and_encoder_reject_bad_sizes():
    assert "vocab_size 4" in error(build_tokenizer, ["a b"], 4)
    assert "no texts" in error(build_tokenizer, [], 100)
    assert "max_len 1" in error(encode_texts, build_tokenizer(["a b"], 50), ["a"], 1)


def test_textdata_never_imports_torch_and_vocabularies_match_across_processes(tmp_path):
    """The whole data path runs with torch made unimportable; a fresh process (new hash seeds) learns the same
    vocabulary as this one."""
    texts = corpus(200).text.tolist()
    path = write(corpus(200), tmp_path / "r.csv")
    code = f"""
import importlib.machinery, json, sys
class Blocked:
    def create_module(self, spec): return None
    def exec_module(self, module): raise ImportError("torch must not be imported")
class Finder:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch": return importlib.machinery.ModuleSpec(name, Blocked())
sys.meta_path.insert(0, Finder())
from grokscope.data import text as textdata
t = textdata.read_text_table({path!r})
textdata.encode_texts(textdata.build_tokenizer(t.texts, 100), t.texts, 16)
assert "torch" not in sys.modules
print(json.dumps(textdata.build_tokenizer(t.texts, 300).get_vocab()))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, capture_output=True, text=True)
    assert json.loads(out.stdout) == build_tokenizer(texts, 300).get_vocab()


def test_docstring_examples_run():
    from grokscope.data import text as textdata

    assert doctest.testmod(textdata, raise_on_error=False).failed == 0
