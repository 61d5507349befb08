"""SHA-256 of files, shared by the downloader and the model card."""

import hashlib
from pathlib import Path


def sha256_file(path, chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of the file at ``path``, read in chunks.

    Parameters
    ----------
    path : str or Path
        File to hash.
    chunk_size : int
        Bytes read at a time (bounded memory for large raw files).

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
