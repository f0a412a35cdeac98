"""The corpus sources manifest (corpus/sources.toml) and fetching the files it lists."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import os
import re
import tempfile
import tomllib
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from qa.errors import SourceError

JURISDICTIONS = ("EU", "UK")
KINDS = ("regulation", "directive", "statutory instrument", "guideline", "reflection paper")
# Version status of the text held (see the header of corpus/sources.toml for what each means).
STATUSES = (
    "current",
    "not-current",
    "excerpt",
    "as-made-amending",
    "not-yet-applicable",
    "to-be-repealed",
    "superseded",
)
# Statuses whose answers must carry the entry's `caveat`.
CAVEAT_REQUIRED = tuple(s for s in STATUSES if s != "current")
STATES = ("present", "copied", "downloaded", "failed")
USER_AGENT = "atmp-qa/0.1 (corpus fetch; python-urllib)"

_REQUIRED = (
    "id",
    "title",
    "short_title",
    "jurisdiction",
    "kind",
    "version_date",
    "url",
    "licence",
    "attribution",
    "file",
    "mirrored",
)
_OPTIONAL = (
    "sha256",
    "download_url",
    "notes",
    "aliases",
    "superseded_by",
    "status",
    "caveat",
    "amends",
)
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Source:
    """One document of the corpus, as listed in sources.toml."""

    id: str
    title: str
    short_title: str
    jurisdiction: str
    kind: str
    version_date: str
    url: str
    licence: str
    attribution: str
    sha256: str | None
    file: str
    mirrored: bool
    download_url: str | None = None
    notes: str = ""
    aliases: tuple[str, ...] = ()  # names people use for it: "ATMP Regulation", "CTR"
    superseded_by: str | None = None  # id of the text that replaced this one
    status: str = "current"  # one of STATUSES: how far the text held is the law as it stands
    caveat: str = ""  # one line shown under answers drawn from it ("" = none needed)
    amends: tuple[str, ...] = ()  # ids (or CELEX / SI names) of the texts it amends


@dataclass(frozen=True)
class FetchStatus:
    """What fetch_corpus did for one source."""

    source: Source
    state: str
    detail: str

    @property
    def required(self) -> bool:
        """True if a failure matters (a not-mirrored text is expected to fail offline)."""
        return self.source.mirrored

    @property
    def ok(self) -> bool:
        """True unless the fetch failed."""
        return self.state != "failed"

    def line(self) -> str:
        """One human-readable status line."""
        return f"{self.state:<11} {self.source.id}  {self.source.short_title}  {self.detail}"


class _FetchFailure(Exception):
    """A one-line reason why one document could not be installed."""


def load_sources(path: Path) -> list[Source]:
    """Read and validate a sources.toml file."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise SourceError(f"{path}: sources manifest not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SourceError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    tables = data.get("source")
    if not isinstance(tables, list) or not tables:
        raise SourceError(f"{path}: no [[source]] tables")
    sources: list[Source] = []
    seen: set[str] = set()
    for number, table in enumerate(tables, start=1):
        source = _parse_source(path, number, table)
        if source.id in seen:
            raise SourceError(f"{path}: duplicate source id {source.id!r} (entry {number})")
        seen.add(source.id)
        sources.append(source)
    return sources


def sources_by_id(sources: Iterable[Source]) -> dict[str, Source]:
    """Index sources by their id."""
    return {source.id: source for source in sources}


def _parse_source(path: Path, number: int, table: Any) -> Source:
    if not isinstance(table, dict):
        raise SourceError(f"{path}: source entry {number} is not a table")
    label = f"{path}: source entry {number} ({table.get('id', 'no id')!s})"
    unknown = sorted(set(table) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise SourceError(f"{label}: unknown key(s) {', '.join(unknown)}")
    missing = [key for key in _REQUIRED if key not in table]
    if missing:
        raise SourceError(f"{label}: missing key(s) {', '.join(missing)}")
    values: dict[str, Any] = {}
    for key in (*_REQUIRED, *_OPTIONAL):
        value = table.get(key)
        if key == "version_date" and isinstance(value, dt.date):
            value = value.isoformat()
        if key == "mirrored":
            if not isinstance(value, bool):
                raise SourceError(f"{label}: 'mirrored' must be true or false")
        elif key in ("aliases", "amends"):
            if value is None:
                value = ()
            elif not isinstance(value, list) or not all(
                isinstance(a, str) and a.strip() for a in value
            ):
                raise SourceError(f"{label}: {key!r} must be a list of non-empty strings")
            value = tuple(value)
        elif key == "caveat" and value is not None:
            if not isinstance(value, str) or "\n" in value.strip():
                raise SourceError(f"{label}: 'caveat' must be a one-line string")
            value = value.strip()
        elif value is not None and (not isinstance(value, str) or not value.strip()):
            raise SourceError(f"{label}: {key!r} must be a non-empty string")
        values[key] = value
    problem = _check_values(values)
    if problem:
        raise SourceError(f"{label}: {problem}")
    values["notes"] = values["notes"] or ""
    values["status"] = values["status"] or "current"
    values["caveat"] = values["caveat"] or ""
    return Source(**values)


def _check_values(v: dict[str, Any]) -> str | None:
    if v["jurisdiction"] not in JURISDICTIONS:
        return f"jurisdiction must be one of {', '.join(JURISDICTIONS)}"
    if v["kind"] not in KINDS:
        return f"kind must be one of {', '.join(KINDS)}"
    status = v["status"] or "current"
    if status not in STATUSES:
        return f"status must be one of {', '.join(STATUSES)}"
    if status in CAVEAT_REQUIRED and not v["caveat"]:
        return f"a text with status {status!r} needs a one-line caveat"
    try:
        dt.date.fromisoformat(v["version_date"])
    except ValueError:
        return f"version_date {v['version_date']!r} is not an ISO date (YYYY-MM-DD)"
    for key in ("url", "download_url"):
        if v[key] is not None and not v[key].startswith(("http://", "https://")):
            return f"{key} must be an http(s) URL"
    if v["sha256"] is not None and not _SHA256.fullmatch(v["sha256"]):
        return "sha256 must be 64 lowercase hex digits"
    if v["mirrored"] and v["sha256"] is None:
        return "a mirrored source needs a sha256"
    file = PurePosixPath(v["file"])
    if file.is_absolute() or ".." in file.parts or "\\" in v["file"]:
        return f"file {v['file']!r} must be a relative path inside corpus/"
    return None


def fetch_corpus(
    sources: Iterable[Source],
    corpus_dir: Path,
    *,
    mirror: Path | None,
    timeout_s: float,
    on_status: Callable[[FetchStatus], None] | None = None,
) -> list[FetchStatus]:
    """Make every source present in corpus_dir: keep, copy from the mirror, or download."""
    statuses: list[FetchStatus] = []
    for source in sources:
        status = _fetch_one(source, corpus_dir, mirror, timeout_s)
        statuses.append(status)
        if on_status is not None:
            on_status(status)
    return statuses


def _fetch_one(
    source: Source, corpus_dir: Path, mirror: Path | None, timeout_s: float
) -> FetchStatus:
    target = corpus_dir / source.file
    stale = ""
    if target.is_file():
        if source.sha256 is None:
            return FetchStatus(source, "present", "(no checksum pinned)")
        try:
            if _sha256_of(target) == source.sha256:
                return FetchStatus(source, "present", "(sha256 ok)")
        except OSError as exc:
            return FetchStatus(source, "failed", f"cannot read {target}: {_reason(exc)}")
        stale = f"{target} has a different sha256; "
    if mirror is not None and (mirror / source.file).is_file():
        copy = mirror / source.file
        try:
            with copy.open("rb") as fh:
                _install(target, source.sha256, fh)
        except (OSError, _FetchFailure) as exc:
            return FetchStatus(source, "failed", f"{stale}mirror copy {copy}: {_reason(exc)}")
        return FetchStatus(source, "copied", f"(from {mirror})")
    where = "not mirrored" if not source.mirrored else "no mirror copy"
    url = source.download_url or (None if source.mirrored else source.url)
    if url is None:
        return FetchStatus(
            source, "failed", f"{stale}{where} and no download_url (official text: {source.url})"
        )
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            _install(target, source.sha256, response)
    except (OSError, ValueError, http.client.HTTPException, _FetchFailure) as exc:
        return FetchStatus(source, "failed", f"{stale}{where}; download failed: {_reason(exc)}")
    return FetchStatus(source, "downloaded", f"(from {url})")


def _install(target: Path, sha256: str | None, stream: IO[bytes]) -> None:
    """Write stream to a temp file beside target, verify its sha256, then move it in place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(1 << 16):
                digest.update(chunk)
                out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise _FetchFailure(
                f"sha256 mismatch (got {digest.hexdigest()[:12]}…, expected {sha256[:12]}…)"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sha256_of(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _reason(exc: BaseException) -> str:
    """A one-line reason for an exception, without a traceback."""
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
