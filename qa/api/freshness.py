"""Switch a running server to an index another process published (a CLI `atmp-qa ingest`).

The server's own ingests switch at once (`IngestJobs`); an ingest run beside the server only
replaces the `index/current` symlink. A watcher thread reads that link every few seconds and,
when it names another build than the one being served, loads it and switches; queries keep
being answered from the current index meanwhile. A build that fails to load is reported once
in the log and the current index stays in place.
"""

import logging
import os
import threading
from pathlib import Path

from qa.errors import QAError
from qa.pipeline import QA

log = logging.getLogger(__name__)


def published_build(index_dir: Path) -> str | None:
    """The name of the build `index_dir/current` points to, or None."""
    try:
        return Path(os.readlink(index_dir / "current")).name
    except OSError:
        return None


class IndexWatcher:
    """Polls the published build every `interval_s` seconds and reloads `qa` when it moved."""

    def __init__(self, qa: QA, *, interval_s: float) -> None:
        self.qa = qa
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._failed: str | None = None  # a build that would not load: not retried
        self._thread = threading.Thread(target=self._run, name="index-watcher", daemon=True)

    def start(self) -> "IndexWatcher":
        """Start watching (a no-op with an interval of 0)."""
        if self.interval_s > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def check(self) -> bool:
        """Reload when the published build is not the one served; True when it switched."""
        build = published_build(self.qa.settings.index_dir)
        served = self.qa.index.path.name if self.qa.index.path is not None else None
        if build is None or build == served or build == self._failed:
            return False
        try:
            self.qa.reload()
        except QAError as ex:
            self._failed = build
            log.warning("not switching to the index build %s: %s", build, ex)
            return False
        log.info("switched to the index build %s published by another process", build)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # a bug must not stop the watcher; the current index stays
                log.exception("checking for a newer index failed")
