"""Units of the figures keras-kd prints: one meaning of "MB" everywhere."""

BYTES_PER_MB = 10**6


def megabytes(num_bytes):
    """File size in MB, where 1 MB is 10^6 bytes (as file managers and app
    stores show sizes).

    Example:

    >>> megabytes(9_300_000)
    9.3
    """
    return num_bytes / BYTES_PER_MB
