"""On-device generation: SmolLM2-135M and a 6-layer student as LiteRT-LM
bundles, side by side, in Google's LiteRT-LM runtime on this CPU.

Bundles (`keras_kd.export.export_litert_lm`, context 128, prefill blocks
of 32): the teacher (the offline `smollm2_135m` preset) in float32 and
dynamic int8; the student (`transfer.student_like(teacher, num_layers=6)`)
in float32 and dynamic int8; and the student with its vocabulary trimmed
to the movie-review training sentences (`transfer.trim_lm_vocabulary`) in
dynamic int8. By default the student is not trained: size and speed do not
depend on the weights' values (bench/causal_lm.py measures what distillation
does to quality). `--student FOLDER` takes a trained student instead, such
as the one `keras-kd demo --task generation` saves
(`saved_models/generation/student`, its vocabulary already trimmed): an
untrained student's near-tied logits can flip a greedy token on float32
rounding, a trained one's should not.

Reported per bundle: file size; greedy agreement with the Keras model's
`generate` on 20 prompts (the first 4 words of test sentences), 16 new
tokens each; prefill and decode tokens/s in the runtime (median over
`--rounds` rounds, the bundles taking turns on the same prompt, 32 new
tokens); Keras greedy tokens/s (batch 1) of teacher and student.

    python bench/litert_lm.py [--out bench/results/litert_lm.json]
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# This file shares its name with the runtime's package `litert_lm`: bench/
# goes to the end of the path so that `import litert_lm` finds the package.
sys.path.append(sys.path.pop(0))

import numpy as np  # noqa: E402

from keras_kd import datasets, transfer  # noqa: E402
from keras_kd.distillation import greedy_tokens_per_second, split_prompts  # noqa: E402
from keras_kd.export import LiteRTLMGenerator, export_litert_lm  # noqa: E402
from keras_kd.utils.io import atomic_write_json  # noqa: E402
from keras_kd.utils.units import megabytes  # noqa: E402
from _machine import machine_info  # noqa: E402
from causal_lm import peak_rss_mib  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student-layers", type=int, default=6)
    parser.add_argument("--student", default=None,
                        help="a trained student's preset folder (default: an "
                             "untrained student_like of --student-layers)")
    parser.add_argument("--max-sequence-length", type=int, default=128)
    parser.add_argument("--prefill-length", type=int, default=32)
    parser.add_argument("--prompts", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--speed-new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default="saved_models/bench_litert_lm")
    parser.add_argument("--out", default="bench/results/litert_lm.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = {"machine": machine_info(), "settings": vars(args)}

    data = datasets.load("movie_reviews")
    # Sentences of at most 4 words give no prompt: sample more, keep 20.
    prompts, _ = split_prompts(data.test.sample(2 * args.prompts, seed=2).texts, 4)
    prompts = prompts[: args.prompts]
    teacher = transfer.load_causal_lm("smollm2_135m")
    if args.student:
        student = transfer.load_causal_lm(args.student)
    else:
        student = transfer.student_like(teacher, num_layers=args.student_layers)
    trimmed = transfer.trim_lm_vocabulary(student, data.train.texts)
    result["vocabulary"] = {
        "teacher": int(teacher.backbone.vocabulary_size),
        "trimmed": int(trimmed.backbone.vocabulary_size),
    }
    result["parameters"] = {
        "teacher": int(teacher.count_params()),
        "student": int(student.count_params()),
        "student_trimmed": int(trimmed.count_params()),
    }
    print(json.dumps({k: result[k] for k in ("vocabulary", "parameters")}), flush=True)

    variants = [
        ("teacher", teacher, "none"),
        ("teacher", teacher, "dynamic_int8"),
        ("student", student, "none"),
        ("student", student, "dynamic_int8"),
    ]
    if trimmed.backbone.vocabulary_size < student.backbone.vocabulary_size:
        variants.append(("student_trimmed", trimmed, "dynamic_int8"))
    bundles = {}
    for name, model, quantization in variants:
        key = f"{name} {quantization}"
        t = time.perf_counter()
        export = export_litert_lm(
            model,
            os.path.join(args.workdir, f"{name}_{quantization}.litertlm"),
            max_sequence_length=args.max_sequence_length,
            prefill_lengths=(args.prefill_length,),
            quantization=quantization,
            overwrite=True,
            verification_prompts=prompts,
            max_new_tokens=args.max_new_tokens,
            # Report, not refuse: an untrained student's near-tied logits
            # can flip a greedy token on float32 rounding.
            min_token_agreement=0.0,
            num_threads=args.threads,
        )
        check = export.verification
        bundles[key] = {
            "path": export.path,
            "size_mb": megabytes(export.size_bytes),
            "embedding_copies": export.embedding_copies,
            "identical_prompts": check.identical_prompts,
            "token_agreement": check.token_agreement,
            "first_difference_mean": check.first_difference_mean,
            "prompt_tokenization_matches": all(p.prompt_ids_match for p in check.prompts),
            "export_and_verify_seconds": time.perf_counter() - t,
            "peak_rss_mib": peak_rss_mib(),
        }
        print(key, json.dumps({k: v for k, v in bundles[key].items() if k != "path"}), flush=True)

    # Runtime speed: the bundles take turns on one prompt, `rounds` times.
    generators = {
        key: LiteRTLMGenerator(info["path"], num_threads=args.threads)
        for key, info in bundles.items()
    }
    speeds = {key: {"prefill": [], "decode": []} for key in generators}
    prompt = prompts[0]
    for _ in range(args.rounds):
        for key, generator in generators.items():
            generation = generator.generate(prompt, max_new_tokens=args.speed_new_tokens)
            speeds[key]["prefill"].append(generation.prefill_tokens_per_second)
            speeds[key]["decode"].append(generation.decode_tokens_per_second)
    for key, generator in generators.items():
        generator.close()
        bundles[key]["prefill_tokens_per_s"] = float(np.median(speeds[key]["prefill"]))
        bundles[key]["decode_tokens_per_s"] = float(np.median(speeds[key]["decode"]))
        bundles[key]["decode_tokens_per_s_runs"] = speeds[key]["decode"]
        print(key, "prefill", round(bundles[key]["prefill_tokens_per_s"], 1),
              "decode", round(bundles[key]["decode_tokens_per_s"], 1), flush=True)

    teacher.preprocessor.sequence_length = args.max_sequence_length
    keras_prompts = prompts[:4]
    length = 4 + args.speed_new_tokens
    result["keras_greedy_tokens_per_s"] = {
        "teacher": greedy_tokens_per_second(teacher, keras_prompts, length),
        "student": greedy_tokens_per_second(student, keras_prompts, length),
    }
    result["bundles"] = bundles

    teacher_fp32 = bundles["teacher none"]
    summary = {
        "float32 bundles token-identical to Keras on all prompts": all(
            bundles[k]["identical_prompts"] == 1.0 for k in ("teacher none", "student none")
        ),
    }
    for key in [k for k in ("student dynamic_int8", "student_trimmed dynamic_int8") if k in bundles]:
        size = bundles[key]["size_mb"] / teacher_fp32["size_mb"]
        speed = bundles[key]["decode_tokens_per_s"] / teacher_fp32["decode_tokens_per_s"]
        summary[f"{key}: size / float32 teacher's"] = size
        summary[f"{key}: target <= 0.25"] = size <= 0.25
        summary[f"{key}: decode tokens/s / float32 teacher's"] = speed
        summary[f"{key}: target >= 3"] = speed >= 3
    result["summary"] = summary
    result["wall_seconds"] = time.perf_counter() - started
    atomic_write_json(args.out, result, overwrite=True)
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out} in {result['wall_seconds']:.0f} s")
    return result


if __name__ == "__main__":
    main()
