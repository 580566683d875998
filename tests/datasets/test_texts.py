"""`read_texts` and `load_texts`: unlabelled text."""

import pytest

from keras_kd.datasets import load_texts, read_texts


def test_a_text_file_is_read_line_by_line_and_split_by_hash(tmp_path):
    path = tmp_path / "mine.txt"
    lines = [f"line number {i}" for i in range(30)]
    path.write_text("\n".join(lines[:15]) + "\n\n  \n" + "\n".join(lines[15:]) + "\n")
    train, test = load_texts(str(path))
    assert (len(train), len(test)) == (27, 3)
    assert sorted(train + test) == sorted(lines)
    # The same texts land in the same splits, whatever their order (each
    # split keeps the source's order).
    reversed_train, reversed_test = load_texts(list(reversed(lines)))
    assert (reversed_train, reversed_test) == (train[::-1], test[::-1])


def test_bad_sources_are_refused_with_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_texts(str(tmp_path / "nope.txt"))
    with pytest.raises(ValueError, match="holds 5 texts: too few to hold 10% out. Give at least 10"):
        load_texts([f"text {i}" for i in range(5)])
    # As many as it names are enough.
    assert len(load_texts([f"text {i}" for i in range(10)])[1]) == 1
    with pytest.raises(ValueError, match="holds 1 text: too few"):
        load_texts(["alone"])
    with pytest.raises(ValueError, match="text 1"):
        load_texts(["fine", ""])
    with pytest.raises(ValueError, match="test_fraction=1.5"):
        load_texts(["fine"] * 20, test_fraction=1.5)
    with pytest.raises(ValueError, match=r"mine\.csv' has no text column 'body'.*\['review', 'stars'\]"):
        (tmp_path / "mine.csv").write_text("review,stars\ngood,5\n", encoding="utf-8")
        load_texts(str(tmp_path / "mine.csv"), text_column="body")
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_texts(str(tmp_path / "nope.jsonl"))


def test_a_labelled_file_gives_its_text_column_split_as_the_list_would_be(tmp_path):
    reviews = [f"review number {i}, with a comma" for i in range(30)]
    path = tmp_path / "reviews.csv"
    path.write_text("stars,review\n" + "".join(f'{i % 5 + 1},"{t}"\n' for i, t in enumerate(reviews)))
    assert load_texts(str(path), text_column="review") == load_texts(reviews)
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(f'{{"review": "{t}"}}\n' for t in reviews))
    assert load_texts(str(path), text_column="review") == load_texts(reviews)


def test_the_offline_sets_of_sentences_give_their_splits():
    train, test = load_texts("tweets")
    assert (len(train), len(test)) == (3358, 419)


def test_read_texts_gives_every_text_in_order(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("first text\n\n  second text  \nthird\n", encoding="utf-8")
    assert read_texts(str(path)) == ["first text", "second text", "third"]
    path = tmp_path / "mine.csv"
    path.write_text("stars,review\n5,great\n1,awful\n", encoding="utf-8")
    assert read_texts(str(path), text_column="review") == ["great", "awful"]
    # An offline set: all three splits (tweets: 3,358 + 419 held out above,
    # and the validation split between them).
    tweets = read_texts("tweets")
    assert len(tweets) == 4196 and set(load_texts("tweets")[1]) <= set(tweets)


def test_read_texts_refuses_an_empty_source(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty.txt holds no texts"):
        read_texts(str(path))
    with pytest.raises(ValueError, match="the list holds no texts"):
        read_texts([])
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_texts(str(tmp_path / "nope.txt"))
