"""Reading figures out of a `keras_kd.pipeline.run` report, for the
benchmarks that run the pipeline (bench/pipeline.py, bench/other_data.py)."""


def by_prefix(summary, prefix):
    """The report figure whose label starts with `prefix`: the report ends
    its labels with the seeds they average ("mean of 3 seeds", "1 seed")."""
    (value,) = [v for k, v in summary.items() if k.startswith(prefix)]
    return value
