"""The report card of a distillation run: `report.json`, `report.md`, `report.png`.

`write_report(report, directory)` takes the dict a pipeline run collects
(`keras_kd.pipeline.report.build_report`):

```python
{
    "title": "keras-kd: movie_reviews",
    "models": {                       # one row per model, in display order
        "teacher (Keras)": {"test_accuracy": 0.85, "parameters": 22_700_000},
        "teacher (TFLite fp32)": {"test_accuracy": 0.85, "size_mb": 89.7,
                                  "latency_ms": 13.4},
        ...
    },
    "curves": {"teacher": {"val_accuracy": [0.80, 0.85]}, ...},
    # or, by training step: {"steps": [10, 20], "accuracy": [0.6, 0.7],
    #                        "val_steps": [20], "val_accuracy": [0.72]}
    "summary": {"accuracy retention": 0.99, ...},   # headline figures
    "samples": [{"prompt": "The movie", "teacher": "...", "student": "..."}],
    "notes": ["..."],                                # lines under the table
    "settings": {...},                               # anything JSON-able
    "scatter": {"y": "decode_tokens_per_s", ...},    # optional, see plot
}
```

and writes the JSON as is, a Markdown table (then the samples, if any, as
a second table), and a chart: by default accuracy against file size
(marker area = latency) beside the learning curves. Generative runs fill
the generation columns (perplexity, tokens per second, agreement with
Keras) instead. `size_mb` is in MB of 10^6 bytes
(`keras_kd.utils.units.megabytes`).
"""

import json
import math
import os

from keras_kd.utils.io import atomic_write, atomic_write_text

_COLUMNS = (
    ("test_accuracy", "test accuracy", "{:.4f}"),
    ("test_accuracy_std", "± (std)", "{:.4f}"),
    ("parameters", "parameters", "{:,d}"),
    ("size_mb", "file size (MB)", "{:.1f}"),
    ("latency_ms", "latency (ms)", "{:.2f}"),
    ("perplexity", "held-out perplexity", "{:,.1f}"),
    ("top1_agreement", "top-1 agreement with teacher", "{:.3f}"),
    ("keras_tokens_per_s", "Keras greedy tok/s", "{:.1f}"),
    ("identical_prompts", "prompts identical to Keras", "{}"),
    ("token_agreement", "tokens agreeing with Keras", "{:.1%}"),
    ("prefill_tokens_per_s", "prefill tok/s", "{:.1f}"),
    ("decode_tokens_per_s", "decode tok/s", "{:.1f}"),
)

# The default chart: accuracy (in %) against file size, area = latency.
_SCATTER = {
    "x": "size_mb",
    "y": "test_accuracy",
    "y_scale": 100,
    "y_label": "test accuracy (%)",
    "area": "latency_ms",
    "area_unit": "ms",
    "title": "Accuracy vs size (marker area = latency)",
}


def _cell(value, fmt):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return fmt.format(value)


def markdown(report):
    """Returns the report as Markdown: the model table, then the summary.

    Args:
        report: the report dict (see the module docstring).

    Returns:
        A Markdown string.

    Example:

    >>> print(markdown({"title": "t", "models": {"m": {"test_accuracy": 0.5}}}))
    # t
    <BLANKLINE>
    | model | test accuracy |
    | --- | --- |
    | m | 0.5000 |
    <BLANKLINE>
    """
    models = report.get("models", {})
    columns = [
        c for c in _COLUMNS if any(c[0] in row for row in models.values())
    ]
    lines = [f"# {report.get('title', 'keras-kd report')}", ""]
    lines.append("| model | " + " | ".join(c[1] for c in columns) + " |")
    lines.append("| --- |" + " --- |" * len(columns))
    for name, row in models.items():
        cells = [_cell(row.get(key), fmt) for key, _, fmt in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    summary = report.get("summary", {})
    if summary:
        for key, value in summary.items():
            text = f"{value:.3f}" if isinstance(value, float) else str(value)
            lines.append(f"- {key}: {text}")
        lines.append("")
    samples = report.get("samples")
    if samples:
        keys = list(samples[0])
        lines.append("| " + " | ".join(keys) + " |")
        lines.append("|" + " --- |" * len(keys))
        for sample in samples:
            cells = [str(sample[k]).replace("|", "\\|").replace("\n", " ") for k in keys]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if report.get("notes"):
        lines.extend(report["notes"])
        lines.append("")
    if report.get("image"):
        lines.append(f"![report]({report['image']})")
        lines.append("")
    return "\n".join(lines)


def plot(report, path, overwrite=False):
    """Draws a scatter of the exported files (by default accuracy vs file
    size, area = latency) and the learning curves.

    `report["scatter"]` overrides the scatter's keys: `y` (a row key),
    `y_scale`, `y_label`, `title`, and `area` (a row key setting the marker
    area, None for equal markers) with its `area_unit`.

    Args:
        report: the report dict (see the module docstring).
        path: where to write the PNG.
        overwrite: replace an existing `path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    spec = {**_SCATTER, **report.get("scatter", {})}
    y_key, scale, area_key = spec["y"], spec["y_scale"], spec["area"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    shipped = {
        name: row
        for name, row in report.get("models", {}).items()
        if row.get("size_mb") and row.get(y_key) is not None
    }
    for name, row in shipped.items():
        area = row.get(area_key) or 1.0 if area_key else 1.0
        label = f"{name}\n{row['size_mb']:.1f} MB"
        if area_key:
            label += f", {area:.1f} {spec['area_unit']}"
        left.scatter(row["size_mb"], scale * row[y_key], s=60 * area, alpha=0.5)
        left.annotate(
            label,
            (row["size_mb"], scale * row[y_key]),
            textcoords="offset points",
            xytext=(8, -4),
            fontsize=8,
        )
    left.set_xscale("log")
    left.set_xlabel("file size (MB, log scale)")
    left.set_ylabel(spec["y_label"])
    left.set_title(spec["title"])
    left.grid(alpha=0.3)
    if shipped:
        values = [scale * r[y_key] for r in shipped.values()]
        margin = 0.1 * (max(values) - min(values)) or 3
        left.set_ylim(min(values) - margin, max(values) + margin)
        sizes = [r["size_mb"] for r in shipped.values()]
        left.set_xlim(min(sizes) / 2, max(sizes) * 4)

    by_step = any("steps" in c for c in report.get("curves", {}).values())
    metrics = set()
    for name, curves in report.get("curves", {}).items():
        if by_step:
            # The training value (running mean over the epoch so far) as a
            # line, the validation value at each epoch's end as markers.
            metric = next(
                k for k in curves if k not in ("steps", "val_steps")
                and not k.startswith("val_")
            )
            metrics.add(metric)
            factor = 100 if metric == "accuracy" else 1
            (line,) = right.plot(
                curves.get("steps", []),
                [factor * v for v in curves.get(metric, [])],
                label=f"{name} (train)",
            )
            if curves.get("val_steps"):
                right.plot(
                    curves["val_steps"],
                    [factor * v for v in curves.get(f"val_{metric}", [])],
                    marker="o", linestyle="none", color=line.get_color(),
                    label=f"{name} (validation)",
                )
            continue
        values = curves.get("val_accuracy") or curves.get("accuracy")
        if values:
            epochs = range(1, len(values) + 1)
            right.plot(epochs, [100 * v for v in values], marker="o", label=name)
    right.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    right.set_xlabel("training step" if by_step else "epoch")
    if by_step:
        right.set_ylabel(
            "accuracy (%)" if metrics <= {"accuracy"} else ", ".join(sorted(metrics))
        )
    else:
        right.set_ylabel("validation accuracy (%)")
    right.set_title("Learning curves")
    right.grid(alpha=0.3)
    if right.get_legend_handles_labels()[0]:
        right.legend(fontsize=8)
    fig.suptitle(report.get("title", "keras-kd report"))
    fig.tight_layout()
    atomic_write(
        path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), overwrite=overwrite
    )
    plt.close(fig)


def write_report(report, directory, overwrite=False):
    """Writes `report.json`, `report.md` and `report.png` into `directory`.

    Each file is written to a temporary name and renamed
    (`keras_kd.utils.io.atomic_write`), so an interrupted run never leaves a
    half-written report.

    Args:
        report: the report dict (see the module docstring).
        directory: an existing folder.
        overwrite: replace a report already there; if False, one raises
            `FileExistsError` before anything is written.

    Returns:
        A dict of the three paths, keyed `"json"`, `"markdown"`, `"png"`.

    Example:

    >>> import tempfile
    >>> paths = write_report(
    ...     {"title": "demo", "models": {"student": {"test_accuracy": 0.84,
    ...                                              "size_mb": 17.4,
    ...                                              "latency_ms": 6.2}}},
    ...     tempfile.mkdtemp())
    >>> print(open(paths["markdown"]).read())
    # demo
    <BLANKLINE>
    | model | test accuracy | file size (MB) | latency (ms) |
    | --- | --- | --- | --- |
    | student | 0.8400 | 17.4 | 6.20 |
    <BLANKLINE>
    ![report](report.png)
    <BLANKLINE>
    """
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"The report folder {directory!r} does not exist; create it first."
        )
    paths = {
        "json": os.path.join(directory, "report.json"),
        "markdown": os.path.join(directory, "report.md"),
        "png": os.path.join(directory, "report.png"),
    }
    existing = [path for path in paths.values() if os.path.exists(path)]
    if existing and not overwrite:
        raise FileExistsError(
            f"{existing[0]!r} already exists. Pass overwrite=True to replace "
            "the report, or choose another folder."
        )
    report = {**report, "image": "report.png"}
    plot(report, paths["png"], overwrite=overwrite)
    atomic_write_text(
        paths["json"],
        json.dumps(report, indent=2, default=float) + "\n",
        overwrite=overwrite,
    )
    atomic_write_text(paths["markdown"], markdown(report), overwrite=overwrite)
    return paths
