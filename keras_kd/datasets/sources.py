"""Reading the in-memory and file sources of `load()` into raw `(texts,
labels)`: `(texts, labels)` pairs, CSV/TSV/JSON Lines files, the checks of
a source before it is read and of its texts and columns while it is, and
the short description of a source."""

import codecs
import csv
import io
import json
import os
import re
from pathlib import Path

import numpy as np

from keras_kd.datasets.rated_sentences import RATED_SENTENCES

_FILE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}


def _describe(source):
    """A short description of a source (file path, pair, or dict of them).

    >>> _describe({"train": "train.csv", "test": (["a"], [0])})
    'train=train.csv, test=python lists'
    """
    if isinstance(source, dict):
        return ", ".join(f"{k}={_describe(v)}" for k, v in source.items())
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "python lists"


def _check_source(source):
    """Checks a file path or a `(texts, labels)` pair without reading the
    file: a known extension, an existing file, two sequences of one length.

    >>> _check_source("reviews.txt")
    Traceback (most recent call last):
    ...
    ValueError: Cannot tell the format of 'reviews.txt' from its extension '.txt'. Expected one of ['.csv', '.jsonl', '.tsv'].
    """
    if isinstance(source, (str, os.PathLike)):
        _check_file(Path(source))
        return
    if (
        isinstance(source, (tuple, list))
        and len(source) == 2
        and all(hasattr(part, "__len__") for part in source)
    ):
        texts, labels = source
        if isinstance(texts, str) or len(texts) != len(labels):
            raise ValueError(
                "A `(texts, labels)` source needs two sequences of the same "
                f"length. Received {type(texts).__name__} of length "
                f"{len(texts)} and labels of length {len(labels)}."
            )
        return
    raise ValueError(
        "Unknown dataset source. Expected "
        + ", ".join(repr(name) for name in RATED_SENTENCES)
        + ", 'tfds:NAME[/CONFIG]', a path to a .csv/.tsv/.jsonl file, a pair "
        "(texts, labels) or a dict of those per split. "
        f"Received: {source!r:.200}"
    )


def _read_source(source, text_column, label_column):
    """Reads a file path or a `(texts, labels)` pair into `(texts, labels)`
    lists; labels stay as given (strings or ints), unmapped.

    >>> _read_source((("good", "bad"), (1, 0)), "text", "label")
    (['good', 'bad'], [1, 0])
    """
    _check_source(source)
    if isinstance(source, (str, os.PathLike)):
        return _read_file(Path(source), text_column, label_column)
    texts, labels = source
    texts = list(texts)
    for i, text in enumerate(texts):
        _check_text(text, f"example {i}")
    labels = list(np.asarray(labels).tolist())
    for i, label in enumerate(labels):
        _check_label(label, f"example {i}")
    return texts, labels


def _check_text(text, where):
    """Raises `ValueError` naming `where` unless `text` is a non-blank `str`.

    >>> _check_text("  ", "example 3")
    Traceback (most recent call last):
    ...
    ValueError: example 3 has an empty text ('  '). Remove the row or fill in its text.
    """
    if not isinstance(text, str):
        raise ValueError(
            f"Texts must be strings; {where} is {type(text).__name__}: "
            f"{text!r:.80}. Convert the column to text."
        )
    if not text.strip():
        raise ValueError(
            f"{where} has an empty text ({text!r}). Remove the row or fill "
            "in its text."
        )


def _check_label(label, where):
    """Raises `ValueError` naming `where` unless `label` names one class: a
    string, an integer, or a float with an integer value.

    >>> _check_label(["pos", "funny"], "example 2")
    Traceback (most recent call last):
    ...
    ValueError: example 2 has the label ['pos', 'funny']: a label names one class, as a string or an integer. One-hot rows: pass `np.argmax(labels, axis=-1)`; multi-label lists and fractional numbers (regression targets) are not classes.
    """
    if isinstance(label, (str, int)) or (isinstance(label, float) and label.is_integer()):
        return
    raise ValueError(
        f"{where} has the label {label!r:.80}: a label names one class, as a "
        "string or an integer. One-hot rows: pass `np.argmax(labels, "
        "axis=-1)`; multi-label lists and fractional numbers (regression "
        "targets) are not classes."
    )


def _read_file(path, text_column, label_column, text_role="text"):
    """Reads `text_column` and `label_column` of a `.csv`, `.tsv` or `.jsonl`
    file (`label_column=None`: the texts alone, labels None; `text_role`
    names the text column in messages: `"prompt"` for `prompt_column`). CSV/TSV labels
    that are all integers become ints; spaces around column names and
    string labels, and after a separator, are dropped. A `.csv` whose
    header has no comma but a semicolon is read as semicolon-separated (what
    spreadsheets save in locales with a decimal comma). A `.tsv` file's
    quote marks are text unless a CSV writer quoted it (`_tsv_quoting`).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "reviews.csv"
    >>> _ = path.write_text("text,label\\ngood,1\\nbad,0\\n", encoding="utf-8")
    >>> _read_file(path, "text", "label")
    (['good', 'bad'], [1, 0])
    >>> _ = path.write_text("text;label\\ngood, really;1\\n", encoding="utf-8")
    >>> _read_file(path, "text", "label")
    (['good, really'], [1])
    >>> _ = path.write_text("text, label \\ngood, pos \\nbad,neg\\n", encoding="utf-8")
    >>> _read_file(path, "text", "label")
    (['good', 'bad'], ['pos', 'neg'])
    """
    fmt = _check_file(path)
    # newline="": a quoted field may hold line breaks (the csv module's rule).
    lines = io.StringIO(read_utf8(path), newline="")
    header = lines.readline()
    lines.seek(0)
    texts, labels = [], []
    if fmt == "jsonl":
        rows = (
            (f"{path}:{n}", _parse_json_line(line, f"{path}:{n}"))
            for n, line in enumerate(lines, 1)
            if line.strip()
        )
    else:
        # Hand-written files put spaces after the separator ("text, label").
        delimiter = _delimiter(fmt, header)
        reader = csv.DictReader(
            lines,
            delimiter=delimiter,
            skipinitialspace=True,
            quoting=_tsv_quoting(lines) if fmt == "tsv" else csv.QUOTE_MINIMAL,
        )
        reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
        _check_columns(reader.fieldnames, path, text_column, label_column, delimiter, text_role)
        _check_unique_columns(reader.fieldnames, path, text_column, label_column)
        # line_num, not a count of rows: a quoted field may span lines.
        rows = ((f"{path}:{reader.line_num}", row) for row in reader)
        if reader.reader.dialect.quoting == csv.QUOTE_NONE:
            rows = ((where, _unquote_fields(row)) for where, row in rows)
    for where, row in rows:
        if fmt == "jsonl":
            _check_columns(list(row), where, text_column, label_column, text_role=text_role)
        if None in row:
            fields = len(reader.fieldnames) + len(row[None])
            fix = (
                "A TSV text cannot hold a tab: replace the tabs in texts "
                "with spaces."
                if fmt == "tsv" else
                f"Quote texts that contain the separator {delimiter!r} (a "
                "CSV writer such as Python's `csv` or pandas does it)."
            )
            raise ValueError(
                f"{where} has {fields} fields, but the header has "
                f"{len(reader.fieldnames)}. {fix}"
            )
        _check_text(row[text_column], f"{where} (column {text_column!r})")
        texts.append(row[text_column])
        if label_column is None:
            continue
        label = row[label_column]
        # "pos " and "pos" are one class.
        label = label.strip() if isinstance(label, str) else label
        if label in (None, ""):
            raise ValueError(
                f"{where} has no label in column {label_column!r}. "
                "Label every example or remove the row."
            )
        _check_label(label, where)
        labels.append(label)
    if not texts:
        raise ValueError(f"{str(path)!r} holds no examples.")
    if label_column is None:
        return texts, None
    if fmt != "jsonl" and all(re.fullmatch(r"-?\d+", v) for v in labels):
        # CSV has no types; integer labels keep their numeric order.
        labels = [int(v) for v in labels]
    return texts, labels


def _check_unique_columns(columns, path, text_column, label_column):
    """Refuses a header that names the text or label column twice: a CSV
    reader keeps the last of them without a word.

    >>> _check_unique_columns(["text", "label", "text"], "a.csv", "text", "label")
    Traceback (most recent call last):
    ...
    ValueError: 'a.csv' has 2 columns named 'text' (columns 1 and 3 of ['text', 'label', 'text']). Rename all but one in the header line.
    """
    for column in (text_column, label_column):
        places = [i for i, name in enumerate(columns, 1) if name == column]
        if len(places) > 1:
            raise ValueError(
                f"{str(path)!r} has {len(places)} columns named {column!r} "
                f"(columns {', '.join(map(str, places[:-1]))} and {places[-1]} "
                f"of {list(columns)}). Rename all but one in the header line."
            )


def _tsv_quoting(lines):
    """How to read a TSV file's quote marks: as text (IANA TSV has no
    quoting, and a review that opens with a quote mark must not swallow the
    rows after it) unless that leaves rows with the wrong number of fields,
    which a CSV writer's quoting of tabs or line breaks explains.

    >>> _tsv_quoting(io.StringIO('text\\tlabel\\n"Great" film\\t1\\nbad\\t0\\n')) == csv.QUOTE_NONE
    True
    >>> _tsv_quoting(io.StringIO('text\\tlabel\\n"a\\tb"\\t1\\n')) == csv.QUOTE_MINIMAL
    True
    """
    rows = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    widths = {len(row) for row in rows if row}
    lines.seek(0)
    return csv.QUOTE_NONE if len(widths) <= 1 else csv.QUOTE_MINIMAL


def _unquote_fields(row):
    """Drops the quotes a CSV writer put around a TSV field (pandas'
    `to_csv(sep="\\t")` quotes fields holding a quote mark), keeping quote
    marks that are part of the text.

    >>> _unquote_fields({"text": '"a ""fine"" film"', "label": '"Great" film'})
    {'text': 'a "fine" film', 'label': '"Great" film'}
    """
    unquoted = {}
    for key, value in row.items():
        if (
            isinstance(value, str)
            and re.fullmatch(r'"(?:[^"]|"")*"', value)
        ):
            value = value[1:-1].replace('""', '"')
        unquoted[key] = value
    return unquoted


def _delimiter(fmt, header):
    """The field separator of a CSV/TSV file, from its first line."""
    if fmt == "tsv":
        return "\t"
    return ";" if ";" in header and "," not in header else ","


def read_utf8(path):
    """The text of a UTF-8 file, a leading byte-order mark dropped (Excel's
    "CSV UTF-8" writes one); any other encoding is refused with the fix.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "reviews.csv"
    >>> _ = path.write_bytes("text,label\\ncaf\u00e9,1\\n".encode("cp1252"))
    >>> read_utf8(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: '...reviews.csv' is not UTF-8 text: line 2 has byte 0xe9 ('caf\ufffd,1'). Save it as UTF-8 (a spreadsheet's "CSV UTF-8"; pandas: `df.to_csv(path, encoding="utf-8")`), or convert it: `iconv -f cp1252 -t utf-8 old.csv > new.csv`.
    """
    data = Path(path).read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        start = data.rfind(b"\n", 0, error.start) + 1
        end = data.find(b"\n", error.start)
        line = data[start : end if end >= 0 else len(data)].decode("utf-8", "replace")
        number = data.count(b"\n", 0, error.start) + 1
        raise ValueError(
            f"{str(path)!r} is not UTF-8 text: line {number} has byte "
            f"0x{data[error.start]:02x} ({line.rstrip()!r:.80}). "
            'Save it as UTF-8 (a spreadsheet\'s "CSV UTF-8"; pandas: '
            '`df.to_csv(path, encoding="utf-8")`), or convert it: '
            "`iconv -f cp1252 -t utf-8 old.csv > new.csv`."
        ) from None


def _check_file(path):
    """Returns the format of a dataset file after checking that it exists."""
    fmt = _FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"Cannot tell the format of {str(path)!r} from its extension "
            f"{path.suffix!r}. Expected one of {sorted(_FILE_FORMATS)}"
            + (
                "" if path.suffix else
                ", or the name of an offline dataset: "
                + ", ".join(repr(name) for name in RATED_SENTENCES)
            )
            + "."
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"No dataset file at {str(path)!r}. Check the path (relative "
            f"paths start from {os.getcwd()!r})."
        )
    return fmt


def _parse_json_line(line, where):
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(row, dict):
        raise ValueError(
            f"{where} holds a JSON {type(row).__name__}; JSON Lines datasets "
            'need one object per line, e.g. {"text": "...", "label": 1}.'
        )
    return row


def _check_columns(columns, where, text_column, label_column, delimiter=None, text_role="text"):
    """Refuses a missing column, naming those there are. With the
    `delimiter` of a CSV/TSV file whose header names none of the columns
    asked for, the message says its first line may be data: the reader
    takes the first line for the header."""
    asked = [c for c in (text_column, label_column) if c is not None]
    folded = {str(c).casefold(): c for c in columns}
    for role, column in ((text_role, text_column), ("label", label_column)):
        if column is None:
            continue
        if column not in columns:
            hint = ""
            if str(column).casefold() in folded:
                hint = (
                    f" Column names are case-sensitive: {role}_column="
                    f"{folded[str(column).casefold()]!r}."
                )
            elif delimiter is not None and not {str(c).casefold() for c in asked} & set(folded):
                hint = (
                    " If that first line is data, not a header, add a "
                    f"header line: {delimiter.join(asked)!r}."
                )
            raise ValueError(
                f"{str(where)!r} has no {role} column {column!r}. Its "
                f"columns are {list(columns)}; pass one of them as "
                f"`{role}_column=` (on the command line, --{role}-column)."
                + hint
            )
