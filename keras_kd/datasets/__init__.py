"""Text-classification data: one `load()` for every source keras-kd reads.

`load(source)` returns a `TextClassificationData`: the class names and up to
three `TextSplit`s (`train`, `validation`, `test`), each holding its texts (a
list of `str`) and integer labels (an `int32` numpy array) in memory, and
giving them as a `tf.data.Dataset` of `(text, label)` (`split.as_dataset()`)
or as tokenized, batched `(x, label)` (`split.tokenize(preprocessor)`).

Sources:

- `"movie_reviews"`: the embedded default, 10,566 movie-review sentences
  (Pang & Lee, as rated by Hutto & Gilbert, 2014), negative or positive;
  `"product_reviews"`, `"news_editorials"` and `"tweets"`: the same
  authors' other rated sentences (Amazon reviews, New York Times opinion,
  tweets), made into examples by the same rule. Fetched once from PyPI (the
  `vaderSentiment==3.3.2` sdist), checked against pinned SHA-256 sums and
  cached under `$KERAS_KD_CACHE` (default `~/.cache/keras_kd`).
- `"tfds:NAME[/CONFIG][:VERSION]"`, e.g. `"tfds:glue/sst2"`: a TensorFlow
  Datasets dataset already prepared in `data_dir`; nothing is downloaded.
- a path to a `.csv`, `.tsv` or `.jsonl` file, with `text_column` and
  `label_column`.
- a pair `(texts, labels)` of Python sequences.
- a dict `{"train": source, "validation": source, "test": source}` of file
  paths or `(texts, labels)` pairs, one per split.

A single file or pair is split into train/validation/test by `splits`
fractions (80/10/10 by default). The split is deterministic and independent of
row order: examples are ranked by the SHA-256 of `seed` and their text, so
identical texts always land in the same split and never leak across splits.

A user's own splits: `load("train.csv", test_data="test.csv")` (and
`validation_data=`) reads each given split whole and splits the training
file into the rest. `check_source` checks any of these arguments without
reading them.

Modules: `load` (the entry point, `check_source`), `text_split` (the containers), `sources`
(pairs and CSV/TSV/JSON Lines files), `tfds` (prepared TensorFlow Datasets,
`prepare_tfds`), `rated_sentences` (the offline datasets and their fetch),
`splitting` (the text-hash split, labels to class indices), `tokenization`
(`tokenize`, `tokenized_examples`, `unknown_token_share`: how much of a text a
vocabulary cannot read), `texts` (`read_texts`, `load_texts`:
unlabelled text, for language models and for distilling on more text;
`load_prompt_responses`: prompt-response files for a causal LM),
`packing` (`pack_texts`: causal-LM training rows without padding),
`prompt_responses` (`preprocess_prompt_responses`: a causal LM's
`{"prompts": [...], "responses": [...]}` rows, the prompts' tokens weighted
0).
"""

from keras_kd.datasets.load import check_source
from keras_kd.datasets.load import load
from keras_kd.datasets.rated_sentences import MOVIE_REVIEWS_CLASS_NAMES
from keras_kd.datasets.rated_sentences import MOVIE_REVIEWS_COUNTS
from keras_kd.datasets.rated_sentences import RATED_SENTENCES
from keras_kd.datasets.rated_sentences import cache_dir
from keras_kd.datasets.rated_sentences import load_movie_reviews
from keras_kd.datasets.rated_sentences import load_rated_sentences
from keras_kd.datasets.packing import pack_texts
from keras_kd.datasets.prompt_responses import preprocess_prompt_responses
from keras_kd.datasets.texts import load_prompt_responses
from keras_kd.datasets.texts import load_texts
from keras_kd.datasets.texts import read_texts
from keras_kd.datasets.text_split import TextClassificationData
from keras_kd.datasets.text_split import TextSplit
from keras_kd.datasets.tfds import prepare_tfds
from keras_kd.datasets.tfds import tfds_data_dir
from keras_kd.datasets.tokenization import tokenize
from keras_kd.datasets.tokenization import tokenized_examples
from keras_kd.datasets.tokenization import unknown_token_share
