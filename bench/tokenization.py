"""keras-hub's two tokenizer paths against SmolLM2's own tokenizer, with
and without keras-kd's fixes, side by side.

keras-hub 0.32's byte-level BPE tokenizer runs TensorFlow ops in tf.data
and `tf.function` (`fit`, `evaluate`) and the Hugging Face `tokenizers`
library when called eagerly (`generate`). For each of three sets of texts
(the movie-review sentences; 500 of them in SmolLM2's chat template; 500
rows of three sentences joined by `<|endoftext|>`) it counts the texts
whose ids on each path differ from those of SmolLM2's `tokenizer.json`
(the tokenizer a LiteRT-LM bundle ships), in fresh processes with
keras-hub as installed and with `keras_kd.transfer` imported (which fixes
it), each under several `PYTHONHASHSEED`s: keras-hub keeps special tokens
in a set, whose order changes from process to process. It prints the
counts and writes JSON with the commit.

    python bench/tokenization.py [--seeds 1,2,3]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_HERE))


def _sets(texts):
    return {
        "movie reviews": texts,
        "chat template": [
            f"<|im_start|>user\n{t}<|im_end|>\n<|im_start|>assistant\n" for t in texts[:500]
        ],
        "joined by <|endoftext|>": [
            "<|endoftext|>".join(texts[i : i + 3]) for i in range(0, 1500, 3)
        ],
    }


def _child(folder, texts_file, fixes):
    """Counts, in this process, the texts each path tokenizes otherwise
    than `tokenizer.json`."""
    import keras_hub
    import numpy as np
    import tensorflow as tf
    from tokenizers import Tokenizer

    if fixes:
        import keras_kd.transfer  # noqa: F401
    elif "keras_kd.transfer.keras_hub_fixes" in sys.modules:
        raise RuntimeError("keras-hub as installed was asked for, and its fixes are in")
    with open(texts_file) as f:
        texts = json.load(f)
    reference = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(folder)
    traced = tf.function(tokenizer)
    counts = {}
    for name, rows in _sets(texts).items():
        expected = [e.ids for e in reference.encode_batch(rows)]
        eager = [np.asarray(ids).tolist() for ids in tokenizer(rows)]
        graph = []
        for start in range(0, len(rows), 256):
            graph += traced(tf.constant(rows[start : start + 256])).to_list()
        counts[name] = {
            "texts": len(rows),
            "eager_differs": sum(a != b for a, b in zip(eager, expected)),
            "tensorflow_differs": sum(a != b for a, b in zip(graph, expected)),
        }
    print(json.dumps(counts))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,2,3", help="PYTHONHASHSEEDs, one process each")
    parser.add_argument("--out", default="bench/results/tokenization.json")
    parser.add_argument("--child", nargs=3, metavar=("FOLDER", "TEXTS", "FIXES"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        folder, texts_file, fixes = args.child
        return _child(folder, texts_file, fixes == "1")

    from keras_kd import datasets
    from keras_kd.presets.registry import resolve_preset
    from keras_kd.utils.io import atomic_write_json
    from _machine import machine_info

    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    folder = resolve_preset("smollm2_135m")
    data = datasets.load("movie_reviews")
    texts = [t for split in data.splits.values() for t in split.texts]
    result = {"machine": machine_info(), "settings": vars(args), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = os.path.join(tmp, "texts.json")
        with open(texts_file, "w") as f:
            json.dump(texts, f)
        for fixes in (0, 1):
            for seed in seeds:
                env = dict(os.environ, PYTHONHASHSEED=str(seed))
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--child", folder,
                     texts_file, str(fixes)],
                    env=env, capture_output=True, text=True, check=True,
                ).stdout
                counts = json.loads(out.strip().splitlines()[-1])
                result["runs"].append({"keras_kd_fixes": bool(fixes), "hash_seed": seed,
                                       "counts": counts})
                print(f"{'with keras-kd' if fixes else 'keras-hub as installed':<23} "
                      f"PYTHONHASHSEED={seed}: " + "; ".join(
                          f"{name}: eager {c['eager_differs']}, TensorFlow "
                          f"{c['tensorflow_differs']} of {c['texts']}"
                          for name, c in counts.items()), flush=True)
    result["seconds"] = time.perf_counter() - started
    print(f"{result['seconds']:.0f} s")
    atomic_write_json(args.out, result, overwrite=True)


if __name__ == "__main__":
    main()
