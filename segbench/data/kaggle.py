"""`--data-root kaggle:OWNER/DATASET[/versions/N]`: a Kaggle dataset, downloaded by kagglehub into its cache
(once: a second run finds it there) and read from the folder kagglehub returns (the optional extra
`segbench[kaggle]`)."""

from __future__ import annotations

import functools
import re

from segbench.errors import SegbenchError

PREFIX = "kaggle:"
HANDLE = re.compile(r"[\w.-]+/[\w.-]+(/versions/\d+)?")


def is_kaggle(root: str | None) -> bool:
    """Whether `root` is a `kaggle:` handle rather than a folder."""
    return root is not None and root.startswith(PREFIX)


def check_handle(root: str) -> None:
    """A `kaggle:` root names OWNER/DATASET, optionally /versions/N; checked without the network."""
    if not HANDLE.fullmatch(root[len(PREFIX):]):
        raise SegbenchError(f"--data-root {root}: a Kaggle dataset is kaggle:OWNER/DATASET "
                            "(or kaggle:OWNER/DATASET/versions/N), e.g. kaggle:anasmohammedtahir/covidqu")


@functools.cache  # once per process: a study plans many runs on one dataset
def download(root: str) -> str:
    """The local folder of the Kaggle dataset `root` ("kaggle:..."), downloaded into kagglehub's cache unless
    there already. One SegbenchError line without kagglehub (naming the extra) or when the download fails."""
    check_handle(root)
    try:
        import kagglehub
    except ImportError:
        raise SegbenchError(f"--data-root {root} needs the kagglehub package: pip install 'segbench[kaggle]'") from None
    try:
        return str(kagglehub.dataset_download(root[len(PREFIX):]))
    except Exception as exc:  # noqa: BLE001 - network, authentication or an unknown dataset: one line, no traceback
        reason = next(iter(str(exc).splitlines()), "") or type(exc).__name__
        raise SegbenchError(f"--data-root {root}: the Kaggle download failed: {reason}") from None


def located(root: str | None) -> tuple[str | None, str | None]:
    """(the folder to read, the `kaggle:` handle it was downloaded from or None) for a --data-root."""
    return (download(root), root) if is_kaggle(root) else (root, None)
