"""Ingest benchmark: full ingest vs `model.encode` alone on the same texts, and a re-ingest.

Usage: python scripts/bench_ingest.py [--mirror ../shared/corpus] [--touch uksi-2025-87]
Prints documents, chunks, seconds and the ratios the issue asks for.
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from qa.config import Settings
from qa.embed import SentenceTransformerEmbedder
from qa.index import Index
from qa.pipeline import ingest
from qa.sources import fetch_corpus, load_sources

REPO = Path(__file__).resolve().parent.parent


def touch(path: Path, sentence: str) -> None:
    """Add a paragraph inside the document's last provision (not after its footnotes)."""
    text = path.read_text()
    at = text.rfind("\n###### ")
    at = text.find("\n\n", at + 1)
    path.write_text(text[:at] + f"\n\n{sentence}" + text[at:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mirror", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--touch", default="uksi-2025-87", help="document id to modify")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="atmp-bench-"))
    try:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            corpus_dir=root / "corpus",
            index_dir=root / "index",
            sources_file=REPO / "corpus" / "sources.toml",
        )
        fetch_corpus(
            load_sources(settings.resolved_sources_file),
            settings.corpus_dir,
            mirror=args.mirror,
            timeout_s=1,
        )
        started = time.perf_counter()
        embedder = SentenceTransformerEmbedder()
        embedder.embed(["warm-up"])
        load_s = time.perf_counter() - started

        full = ingest(settings, rebuild=True, embedder=embedder)
        texts = [c.embed_text for c in Index.load(settings.index_dir).chunks]
        started = time.perf_counter()
        embedder.model.encode(
            texts, batch_size=settings.embed_batch_size, normalize_embeddings=True
        )
        encode_s = time.perf_counter() - started

        touched = next(settings.corpus_dir.rglob(f"{args.touch}.*"))
        touch(touched, "An added paragraph for the benchmark.")
        again = ingest(settings, embedder=embedder)
        cold_started = time.perf_counter()
        touch(touched, "A second added paragraph.")
        ingest(settings, embedder=SentenceTransformerEmbedder())
        cold_s = time.perf_counter() - cold_started

        print(f"documents                 {len(Index.load(settings.index_dir).manifest.documents)}")
        print(f"chunks                    {full.chunks}")
        print(f"model load                {load_s:8.2f} s")
        print(f"full ingest (warm model)  {full.seconds:8.2f} s")
        print(f"model.encode alone        {encode_s:8.2f} s")
        print(f"ratio ingest / encode     {full.seconds / encode_s:8.3f}")
        print(f"re-ingest, 1 doc touched  {again.seconds:8.2f} s  ({again.embedded} embedded)")
        print(f"  incl. cold model load   {cold_s:8.2f} s")
        print(f"ratio re-ingest / full    {again.seconds / full.seconds:8.3f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
