"""Command line: `atmp-qa corpus fetch | ingest | search | docs | serve`."""

import json
import logging
import os
from pathlib import Path
from typing import Any

import click

from qa.config import MAX_ASK_K, MAX_SEARCH_K, Settings
from qa.errors import QAError
from qa.readers.document import UPLOADED


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


class _Group(click.Group):
    """Turns domain errors into one line and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QAError as ex:
            raise click.ClickException(str(ex)) from None
        except ValueError as ex:  # settings validation and similar
            raise click.ClickException(str(ex).splitlines()[0]) from None


@click.group(cls=_Group)
@click.version_option(package_name="atmp-qa")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """ATMP-QA: answers with citations from EU/UK advanced-therapy law.

    \b
    Quick start:
      atmp-qa corpus fetch && atmp-qa ingest && atmp-qa serve
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        ctx.obj = Settings()
    except ValueError as ex:
        raise click.ClickException(f"Invalid settings: {ex}") from None


@cli.group(cls=_Group)
def corpus() -> None:
    """Manage the document corpus."""


@corpus.command("fetch")
@click.option(
    "--mirror",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Directory mirroring the documents (default: QA_CORPUS_MIRROR or ../shared/corpus).",
)
@click.pass_context
def corpus_fetch(ctx: click.Context, mirror: Path | None) -> None:
    """Fill corpus/ from a mirror directory, else from the official URLs.

    \b
    Example:
      atmp-qa corpus fetch --mirror ../shared/corpus
    """
    from qa.sources import fetch_corpus, load_sources

    settings = _settings(ctx).model_copy(update={"corpus_mirror": mirror} if mirror else {})
    if mirror is not None and not mirror.is_dir():
        raise click.BadParameter(f"{mirror} is not a directory", param_hint="--mirror")
    sources = load_sources(settings.resolved_sources_file)
    statuses = fetch_corpus(
        sources,
        settings.corpus_dir,
        mirror=settings.resolved_mirror,
        timeout_s=settings.download_timeout_s,
        on_status=lambda status: click.echo(status.line()),
    )
    required_failures = [s for s in statuses if s.state == "failed" and s.required]
    optional_failures = [s for s in statuses if s.state == "failed" and not s.required]
    click.echo(
        f"{len(statuses) - len(required_failures) - len(optional_failures)} of {len(statuses)} "
        f"documents in {settings.corpus_dir}/"
        + (
            f"; {len(optional_failures)} not mirrored and not downloadable here"
            if optional_failures
            else ""
        )
    )
    if required_failures:
        raise click.ClickException(
            f"{len(required_failures)} mirrored document(s) could not be fetched: "
            + ", ".join(s.source.id for s in required_failures)
        )


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--rebuild", is_flag=True, help="Re-embed everything instead of reusing vectors.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...], rebuild: bool, quiet: bool) -> None:
    """Index documents (default: the corpus directory); only changed ones are re-embedded.

    \b
    Examples:
      atmp-qa ingest
      atmp-qa ingest corpus/eu/32007R1394.md --rebuild
    """
    from tqdm import tqdm

    from qa.pipeline import ingest as run_ingest

    settings = _settings(ctx)
    bars: list[Any] = []

    def on_embed_start(total: int) -> Any:
        if quiet:
            return None
        bar = tqdm(total=total, desc="Embedding", unit="chunk", leave=False)
        bars.append(bar)
        return bar.update

    try:
        report = run_ingest(settings, list(paths), rebuild=rebuild, on_embed_start=on_embed_start)
    finally:
        for bar in bars:
            bar.close()
    for file, reason in report.failed:
        click.echo(
            f"skipped  {reason if reason.startswith(Path(file).name) else f'{file}: {reason}'}",
            err=True,
        )
    for label, ids in (
        ("added", report.added),
        ("changed", report.changed),
        ("removed", report.removed),
    ):
        if ids:
            click.echo(f"{label:8} {', '.join(ids)}")
    click.echo(report.summary())
    if report.embedded:
        click.echo(f"embedding took {report.embed_seconds:.1f} s of {report.seconds:.1f} s")


def _check_question(text: str, hint: str) -> str:
    from qa.config import MAX_QUESTION_CHARS

    if not text.strip():
        raise click.BadParameter(f"the {hint.lower()} is empty", param_hint=hint)
    if len(text.strip()) > MAX_QUESTION_CHARS:
        raise click.BadParameter(
            f"the {hint.lower()} has {len(text.strip())} characters; the limit is "
            f"{MAX_QUESTION_CHARS}",
            param_hint=hint,
        )
    return text.strip()


def _filters(jurisdiction: tuple[str, ...], doc_ids: tuple[str, ...]) -> Any:
    from qa.retrieval.search import Filters

    if not jurisdiction and not doc_ids:
        return None
    return Filters(jurisdictions=frozenset(jurisdiction), doc_ids=frozenset(doc_ids))


def _filter_options(command: Any) -> Any:
    """--jurisdiction, --doc-id and --server, the same on `ask` and `search`."""
    command = click.option(
        "--server",
        default=None,
        metavar="URL",
        help="Ask a running server instead of loading the model (default: QA_SERVER).",
    )(command)
    command = click.option(
        "--doc-id",
        "--doc",
        "doc_ids",
        multiple=True,
        help="Only this document id (repeatable; `atmp-qa docs` lists them).",
    )(command)
    return click.option(
        "--jurisdiction", type=click.Choice(["EU", "UK"]), multiple=True, help="Only EU/UK."
    )(command)


@cli.command()
@click.argument("query")
@click.option(
    "-k", "--k", "k", type=click.IntRange(1, MAX_SEARCH_K), default=None, help="Passages."
)
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /search returns it).")
@click.option(
    "--explain", is_flag=True, help="Show the question analysis and each signal's contribution."
)
@click.pass_context
def search(
    ctx: click.Context,
    query: str,
    k: int | None,
    jurisdiction: tuple[str, ...],
    doc_ids: tuple[str, ...],
    server: str | None,
    as_json: bool,
    explain: bool,
) -> None:
    """Show the passages most similar to QUERY.

    \b
    Example:
      atmp-qa search "How long must traceability data be kept?" -k 3
    """
    query = _check_question(query, "QUERY")
    server = server or _settings(ctx).server
    analysis: dict[str, Any] = {}
    signals: list[dict[str, float]] = []
    if server:
        if explain:
            raise click.UsageError("--explain needs the local index; drop --server / QA_SERVER.")
        from qa import remote

        data = remote.search(
            server, query, k=k, jurisdictions=list(jurisdiction), doc_ids=list(doc_ids)
        )
    else:
        from qa.api.schemas import passage_out
        from qa.pipeline import QA

        qa = QA.from_settings(_settings(ctx))
        analysed = qa.analyse(query)
        passages = qa.search(analysed, k=k, filters=_filters(jurisdiction, doc_ids))
        data = {"results": [passage_out(p).model_dump(mode="json") for p in passages]}
        analysis, signals = analysed.to_json(), [p.explain() for p in passages]
    if as_json:
        if explain:
            data["query"] = analysis
            for row, explained in zip(data["results"], signals, strict=True):
                row["signals"] = explained
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    if explain:
        for name, value in analysis.items():
            if value:
                click.echo(f"{name}: {value}")
        click.echo()
    for i, p in enumerate(data["results"]):
        page = f", p. {p['page']}" if p.get("page") else ""
        short_title = p.get("short_title") or p["title"]
        click.echo(
            click.style(
                f"[{p['rank']}] {short_title}, {p['section']}{page}  ({p['score']:.3f})",
                bold=True,
            )
            + (f"  [{p['origin']}]" if p["origin"] == UPLOADED else "")
        )
        if p.get("url"):
            click.echo(f"    {p['url']}")
        if explain:
            click.echo("    " + "  ".join(f"{n} {v:+.3f}" for n, v in signals[i].items()))
        snippet = " ".join(p["text"].split())
        click.echo(f"    {snippet[:400]}{'…' if len(snippet) > 400 else ''}\n")


@cli.command()
@click.argument("question")
@click.option(
    "-k",
    "--k",
    "k",
    type=click.IntRange(1, MAX_ASK_K),
    default=None,
    help="Passages to retrieve and cite from.",
)
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as POST /ask returns it).")
@click.pass_context
def ask(
    ctx: click.Context,
    question: str,
    k: int | None,
    jurisdiction: tuple[str, ...],
    doc_ids: tuple[str, ...],
    server: str | None,
    as_json: bool,
) -> None:
    """Answer QUESTION from the indexed documents, citing every claim.

    \b
    Example:
      atmp-qa ask "How long must ATMP traceability data be kept?"
    """
    question = _check_question(question, "QUESTION")
    server = server or _settings(ctx).server
    if server:
        from qa import remote

        data = remote.ask(
            server, question, k=k, jurisdictions=list(jurisdiction), doc_ids=list(doc_ids)
        )
    else:
        from qa.api.schemas import answer_out
        from qa.pipeline import QA

        answer = QA.from_settings(_settings(ctx)).ask(
            question, top_k=k, filters=_filters(jurisdiction, doc_ids)
        )
        data = answer_out(answer).model_dump(mode="json")
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    _print_answer(data)


def _print_answer(data: dict[str, Any]) -> None:
    """An answer as POST /ask returns it, for reading in a terminal."""
    click.echo(data["answer"] + "\n")
    if error := data.get("generator_error"):
        click.echo(f"Note: {error}", err=True)
    for caveat in data.get("caveats", []):
        click.echo(f"Note: {caveat}.")
    if data.get("caveats"):
        click.echo()
    abstained = data["abstained"]
    sources = data["related"] if abstained else data["citations"]
    click.echo(click.style("Related passages:" if abstained else "Sources:", bold=True))
    first_see_also = min((c["n"] for c in sources if not c["used"]), default=None)
    for c in sources:
        if not abstained and c["n"] == first_see_also:
            click.echo(click.style("See also:", bold=True))
        page = f", p. {c['page']}" if c.get("page") else ""
        upload = " (uploaded document, not an official text)" if c["origin"] == UPLOADED else ""
        click.echo(f"[{c['n']}] {c['section']}{page} — {c['short_title']}{upload}")
        click.echo(f"    {c['title']}")
        if c.get("url"):
            click.echo(f"    {c['url']}")


@cli.command("eval")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "-k", "--k", "k", type=click.IntRange(1, MAX_ASK_K), default=5, help="Citations scored."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def eval_command(ctx: click.Context, file: Path, k: int, as_json: bool) -> None:
    """Score answers on a gold JSONL file: answer and citation [1] accuracy, fragments,
    repeated quotes, refusals, retrieval hit@k, latency, and every miss.

    \b
    Example:
      atmp-qa eval ../shared/eval/dev.jsonl
    """
    from qa.evaluate import evaluate, load_items
    from qa.pipeline import QA

    items = load_items(file)
    qa = QA.from_settings(_settings(ctx))
    qa.warm_up()
    report = evaluate(items, lambda q: qa.ask(q, top_k=k), k=k)
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        return
    for name, value in report.summary().items():
        click.echo(f"{name:22} {value}")
    misses = report.misses()
    if misses:
        click.echo(f"\nmisses ({len(misses)}):")
    for r in misses:
        want = " or ".join(f"{s.doc_id} {s.section}" for s in r.item.sources)
        click.echo(f"  {r.item.id:5} {'; '.join(r.problems())}")
        click.echo(f"        question: {r.item.question}")
        if want:
            click.echo(f"        want {want}; [1] is {r.top}")
        if not r.abstained:
            click.echo(f"        answer: {r.answer[:300]}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def docs(ctx: click.Context, as_json: bool) -> None:
    """List the indexed documents with their version status and caveat.

    \b
    Example:
      atmp-qa docs --json
    """
    from dataclasses import asdict

    from qa.index import read_manifest

    manifest = read_manifest(_settings(ctx).index_dir)
    records = list(manifest.documents.values())
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model": manifest.model,
                    "built_at": manifest.built_at,
                    "chunks": manifest.chunk_count,
                    "documents": [asdict(r) for r in records],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    for r in records:
        click.echo(
            f"{r.doc_id:16} {r.jurisdiction or '--':3} {r.chunks:5} chunks  "
            f"{r.status:18} {r.short_title}  ({r.origin})"
        )
        if r.caveat:
            click.echo(f"{'':16}   caveat: {r.caveat}")
    click.echo(
        f"{len(records)} documents, {manifest.chunk_count} chunks, built {manifest.built_at}"
    )


@cli.command()
@click.option("--host", default=None, help="Bind address (default: QA_HOST or 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port (default: QA_PORT or 8000)."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes, each loading the published index (default: QA_WORKERS or the "
    "number of CPUs).",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API.

    \b
    Example:
      atmp-qa serve --port 8000 --workers 2
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from qa.api import create_app
    from qa.api.server import WORKER_APP, server_config
    from qa.api.service import load_service
    from qa.index import DenseOptions, Index, read_manifest
    from qa.onnx_embed import OnnxEmbedder
    from qa.pipeline import load_embedder

    settings = _settings(ctx).model_copy(update={"host": host} if host else {})
    host, port = host or settings.host, port or settings.port
    workers = workers or settings.workers or os.cpu_count() or 1
    read_manifest(settings.index_dir)  # fail fast, with the fix, before loading the model
    if workers == 1:
        # Load the index here, not in the app's startup, so a damaged index is one line naming
        # the file and the fix (and exit code 1) rather than uvicorn's traceback.
        app = create_app(settings, qa=load_service(settings))
        uvicorn.Server(server_config(app, settings, host=host, port=port)).run()
        return
    # Check the index once here (without the model), so a damaged one is one line, not one
    # traceback per worker; export the ONNX model once, before the workers need it.
    embedder = load_embedder(settings)
    Index.load(
        settings.index_dir,
        model=embedder.model_name,
        dim=embedder.dim,
        dense=DenseOptions(kind="flat"),  # checking the files needs no HNSW graph
    )
    if isinstance(embedder, OnnxEmbedder):
        embedder.model_dir  # noqa: B018 (exports on first use)
    del embedder
    # The workers build their settings from the environment: pass on what the options changed,
    # and share the cores between them rather than each using all of them.
    os.environ["QA_HOST"] = host
    if not settings.embed_threads:
        os.environ["QA_EMBED_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    config = server_config(WORKER_APP, settings, host=host, port=port, workers=workers)
    click.echo(f"Serving on http://{host}:{port} with {workers} worker processes.", err=True)
    Multiprocess(config, sockets=[config.bind_socket()]).run()


@cli.command()
@click.pass_context
def mcp(ctx: click.Context) -> None:
    """Serve the tools ask, search, get_passage and list_documents to an MCP client over
    stdin/stdout (the HTTP server has the same tools at /mcp).

    \b
    Example (the command an MCP client such as Claude Desktop runs):
      atmp-qa mcp
    """
    from qa.api.service import load_service
    from qa.index import read_manifest
    from qa.mcp_server import run_stdio

    settings = _settings(ctx)
    read_manifest(settings.index_dir)  # fail fast, with the fix, before loading the model
    run_stdio(load_service(settings))
