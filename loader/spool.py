"""A local file of vehicle rows, written while fetching and read back by dlt.

The run keeps the fetched showroom on disk instead of in memory: rows go into a spool
file in the run's temporary working directory as they arrive, in pages, and dlt's
extract reads the pages back only after every check has passed. Peak memory then
depends on the page size and the requests in flight, not on the showroom's size.

Pickle keeps the rows' Python types (timezone-aware datetimes, floats, None) exactly
as `loader.shapes` made them, so dlt sees the same values as it would from memory.
The file is written and read by the same process and deleted with the working
directory; nothing else ever reads it.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from loader.shapes import Row

# Vehicles per page. dlt's extract writes each page as one line that its normalize
# step parses whole (with ~19 options per vehicle): a page of 100 is ~0.6 MB of JSON.
PAGE_ROWS = 100


class RowSpool:
    """Append rows (each with its `options` list), then read them back in pages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self.options = 0
        self._page: list[Row] = []
        self._file: BinaryIO | None = path.open("wb")

    def add(self, row: Row) -> None:
        """Buffer one row; a full page goes to the file."""
        if self._file is None:
            raise RuntimeError(f"spool {self.path.name} is closed for writing")
        self._page.append(row)
        self.rows += 1
        self.options += len(row["options"])
        if len(self._page) >= PAGE_ROWS:
            self._flush()

    def close(self) -> None:
        """Write the last partial page and close the file (idempotent)."""
        if self._file is None:
            return
        try:
            self._flush()
        finally:
            self._file.close()
            self._file = None

    def pages(self) -> Iterator[list[Row]]:
        """The rows in the order they were added, a page at a time."""
        self.close()
        with self.path.open("rb") as handle:
            while True:
                try:
                    yield pickle.load(handle)  # noqa: S301 - our own file, this run
                except EOFError:
                    return

    def _flush(self) -> None:
        if self._page and self._file is not None:
            pickle.dump(self._page, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._page = []
