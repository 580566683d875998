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


def test_empty_text_names_the_line(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("text,label\ngood,1\n   ,0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"e\.csv:3 .*empty text"):
        datasets.load(str(path))


def test_missing_label_names_the_line(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text("text\tlabel\ngood\t1\nbad\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"m\.tsv:3 has no label in column 'label'"):
        datasets.load(str(path))


def test_jsonl_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"text": "a", "label": 0}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"j\.jsonl:2 holds a JSON list"):
        datasets.load(str(path))
    path.write_text('{"text": "a", "label": 0}\n{"text": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"j\.jsonl:2 is not valid JSON"):
        datasets.load(str(path))
