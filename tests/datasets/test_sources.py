"""Reading CSV/TSV/JSON Lines files (`load` on paths): chosen columns,
integer labels, and messages that name the file, line and column."""

import csv
import json

import pytest

from keras_kd import datasets


@pytest.fixture
def review_files(tmp_path):
    rows = [
        ("Loved it, truly", "pos", 5),
        ("Dreadful, \"boring\" film", "neg", 1),
        ("Fine, I guess\tmaybe", "pos", 3),
        ("Never again", "neg", 2),
    ]
    with open(tmp_path / "r.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment", "stars"])
        writer.writerows(rows)
    with open(tmp_path / "r.tsv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["review", "sentiment", "stars"])
        writer.writerows(rows)
    with open(tmp_path / "r.jsonl", "w", encoding="utf-8") as f:
        for text, sentiment, stars in rows:
            f.write(json.dumps({"review": text, "sentiment": sentiment,
                                "stars": stars}) + "\n")
    return tmp_path, rows


@pytest.mark.parametrize("suffix", ["csv", "tsv", "jsonl"])
def test_files_with_chosen_columns(review_files, suffix):
    folder, rows = review_files
    data = datasets.load(
        str(folder / f"r.{suffix}"),
        text_column="review",
        label_column="sentiment",
        splits=(1.0, 0.0, 0.0),
    )
    assert data.class_names == ["neg", "pos"]
    assert data.train.texts == [r[0] for r in rows]
    assert data.train.labels.tolist() == [1, 0, 1, 0]


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_integer_label_column_keeps_numeric_classes(review_files, suffix):
    folder, rows = review_files
    data = datasets.load(
        {"train": folder / f"r.{suffix}"},
        text_column="review",
        label_column="stars",
        class_names=["0", "1", "2", "3", "4", "5"],
    )
    assert data.train.labels.tolist() == [5, 1, 3, 2]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        datasets.load(str(tmp_path / "nope.csv"))


def test_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=r"'\.txt'.*\.csv"):
        datasets.load(str(tmp_path / "data.txt"))


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_missing_column(review_files, suffix):
    folder, _ = review_files
    with pytest.raises(ValueError, match=r"no text column 'text'.*'review'"):
        datasets.load(str(folder / f"r.{suffix}"), label_column="sentiment")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("e.csv", "text,label\ngood,1\n   ,0\n", r"e\.csv:3 .*empty text"),
        ("m.tsv", "text\tlabel\ngood\t1\nbad\t\n", r"m\.tsv:3 has no label in column 'label'"),
        (
            "latin.csv",
            "text,label\ngood,1\ncafé crème,0\n".encode("cp1252"),
            r"latin\.csv' is not UTF-8 text: line 3 has byte 0xe9 .*Save it as UTF-8",
        ),
        (
            "mixed.jsonl",
            '{"text": "a", "label": 1}\n{"text": "b", "label": "pos"}\n',
            r"mix types \['int', 'str'\], e\.g\. 1 and 'pos'",
        ),
        ("j.jsonl", '{"text": "a", "label": 0}\n[1, 2]\n', r"j\.jsonl:2 holds a JSON list"),
        ("l.jsonl", '{"text": "a", "label": ["pos"]}\n', r"l\.jsonl:1 has the label \['pos'\]: a label names one class"),
        ("f.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": 1.5}\n', r"f\.jsonl:2 has the label 1\.5"),
        ("j.jsonl", '{"text": "a", "label": 0}\n{"text": \n', r"j\.jsonl:2 is not valid JSON"),
        (
            # The first line is read as the header: a file without one.
            "nohead.tsv",
            "good film\t1\nbad film\t0\n",
            r"no text column 'text'\. Its columns are \['good film', '1'\].*add a header line: 'text\\tlabel'",
        ),
        (
            "cased.csv",
            "Text,Label\ngood,1\n",
            r"no text column 'text'.*case-sensitive: text_column='Text'\.$",
        ),
        (
            # Unquoted, "Bad; sadly" is two fields: the separator is ';'.
            "excel.csv",
            "text;label\nGood, truly;pos\nBad; sadly;neg\n",
            r"excel\.csv:3 has 3 fields.*header has 2\. Quote texts that contain the separator .;.",
        ),
    ],
)
def test_bad_file_is_refused_with_what_and_where(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(ValueError, match=message):
        datasets.load({"train": path})


def test_one_hot_labels_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"example 0 has the label \[1, 0\].*np\.argmax\(labels, axis=-1\)"):
        datasets.load((["a", "b"], [[1, 0], [0, 1]]))
    # Floats of integer value are the integers.
    data = datasets.load((["a", "b", "c", "d"], [0.0, 1.0, 1.0, 0.0]), splits=(1.0, 0.0, 0.0))
    assert data.class_names == ["0", "1"] and data.train.labels.tolist() == [0, 1, 1, 0]


def test_star_ratings_name_their_classes_and_read_back_the_same(review_files):
    folder, rows = review_files
    path = folder / "r.csv"
    data = datasets.load({"train": path}, text_column="review", label_column="stars")
    assert data.class_names == ["1", "2", "3", "5"]
    assert [data.class_names[i] for i in data.train.labels] == ["5", "1", "3", "2"]
    # A model trained on it carries those names; its evaluation data maps
    # the same stars to the same classes.
    again = datasets.load(
        {"train": path}, text_column="review", label_column="stars",
        class_names=data.class_names,
    )
    assert again.train.labels.tolist() == data.train.labels.tolist() == [3, 0, 2, 1]


def test_spreadsheet_csv_with_byte_order_mark_and_semicolons(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text('text;label\nGood, truly;pos\n"Bad; sadly";neg\n', encoding="utf-8-sig")
    data = datasets.load({"train": path})
    assert data.train.texts == ["Good, truly", "Bad; sadly"]
    assert data.class_names == ["neg", "pos"]
    assert data.train.labels.tolist() == [1, 0]


def test_tsv_quote_marks_are_text_unless_a_writer_quoted_the_fields(tmp_path):
    # An unclosed quote mark opened a quoted field that swallowed the rows
    # after it: 2 examples were read from 4.
    raw = tmp_path / "raw.tsv"
    raw.write_text(
        'text\tlabel\n"Great film, said nobody\t0\n"Fine" work\t1\nbad\t0\nok\t1\n',
        encoding="utf-8",
    )
    data = datasets.load({"train": raw}, splits=(1.0, 0.0, 0.0))
    assert data.train.texts == ['"Great film, said nobody', '"Fine" work', "bad", "ok"]
    assert data.train.labels.tolist() == [0, 1, 0, 1]
    # A CSV writer's TSV (tabs and quote marks quoted) reads back as written.
    rows = [('He said "hi"', 1), ("a\ttab", 0), ("plain", 1)]
    written = tmp_path / "written.tsv"
    with open(written, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    data = datasets.load({"train": written}, splits=(1.0, 0.0, 0.0))
    assert data.train.texts == [r[0] for r in rows]
    # Quote marks alone (no tab inside a field): unquoted as a writer meant.
    quoted = tmp_path / "quoted.tsv"
    quoted.write_text('text\tlabel\n"He said ""hi"""\t1\nplain\t0\n', encoding="utf-8")
    assert datasets.load({"train": quoted}, splits=(1.0, 0.0, 0.0)).train.texts == [
        'He said "hi"', "plain"]


def test_a_column_named_twice_is_refused():
    # csv.DictReader kept the last 'text' column without a word.
    import pathlib
    import tempfile

    path = pathlib.Path(tempfile.mkdtemp()) / "twice.csv"
    path.write_text("text,label,text\ngood,1,summary one\nbad,0,summary two\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"twice\.csv' has 2 columns named 'text' \(columns 1 and 3 .*Rename all but one"):
        datasets.load({"train": path})
    # A repeated column that is neither the text nor the label is harmless.
    path.write_text("text,label,note,note\ngood,1,a,b\nbad,0,c,d\n", encoding="utf-8")
    assert datasets.load({"train": path}, splits=(1.0, 0.0, 0.0)).train.texts == ["good", "bad"]


def test_errors_name_the_line_after_a_text_that_spans_lines(tmp_path):
    # Rows were counted, so a quoted line break put every later message
    # one line early.
    path = tmp_path / "multi.csv"
    path.write_text('text,label\n"first line\nsecond line",1\ngood,1\n  ,0\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"multi\.csv:5 \(column 'text'\) has an empty text"):
        datasets.load({"train": path})
