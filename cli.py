"""The `semhash` command: index a folder of documents, query it, describe an index."""

import json
import os
import sys
import time
from pathlib import Path

import click

from semhash import __version__
from semhash.corpus import DEFAULT_PATTERNS, TextCorpus, read_text
from semhash.errors import SemhashError
from semhash.features import WEIGHTINGS
from semhash.index import MANIFEST, Index

INDEXES = Path("indexes")


class Group(click.Group):
    """Turns every failure into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SemhashError as error:
            raise click.ClickException(str(error)) from None
        except KeyboardInterrupt:
            click.echo("semhash: interrupted; any earlier index was left as it was", err=True)
            ctx.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if os.environ.get("SEMHASH_DEBUG"):
                raise
            raise click.ClickException(
                f"unexpected {type(error).__name__}: {error} "
                "(run again with SEMHASH_DEBUG=1 to see where, and report it)"
            ) from None


class Number(click.ParamType):
    """An int (a count of documents) or a float (a share of them), as scikit-learn takes them."""

    name = "number"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return value
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            self.fail(f"{value!r} is not a number", param, ctx)


def batch_size(ctx, param, value):
    if value == "auto":
        return value
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise click.BadParameter("give a positive number of rows, or auto")
    return size


def layer_sizes(ctx, param, value):
    try:
        sizes = tuple(int(size) for size in value.split(",") if size.strip())
    except ValueError:
        raise click.BadParameter("give layer sizes as integers separated by commas, e.g. 500,250") from None
    if any(size < 1 for size in sizes):
        raise click.BadParameter("layer sizes must be positive")
    return sizes


def emit(row, plain_line=None, plain=False):
    """One JSON line on stdout, or the human line when --plain."""
    click.echo(plain_line if plain else json.dumps(row, ensure_ascii=False))


def default_index():
    """The only index under indexes/, or a UsageError saying how to choose."""
    found = sorted(path for path in INDEXES.iterdir() if (path / MANIFEST).is_file()) if INDEXES.is_dir() else []
    if not found:
        raise click.UsageError(f"no index under {INDEXES}/; build one with `semhash index DIR` or give --index")
    if len(found) > 1:
        names = ", ".join(str(path) for path in found)
        raise click.UsageError(f"several indexes under {INDEXES}/ ({names}); choose one with --index")
    return found[0]


@click.group(cls=Group)
@click.version_option(__version__, prog_name="semhash")
def cli():
    """Semantic hashing: turn documents into short binary codes and search them by meaning."""


@cli.command()
@click.argument("corpus_dir", metavar="DIR", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Index folder [default: indexes/<name of DIR>].")
@click.option("--glob", "patterns", multiple=True, default=DEFAULT_PATTERNS, show_default=True,
              help="File name pattern to index, searched recursively; repeat for several.")
@click.option("--bits", type=click.IntRange(1, 1024), default=64, show_default=True, help="Bits per code.")
@click.option("--hidden", default="256", show_default=True, callback=layer_sizes,
              help="Sizes of the hidden layers between the input and the code layer.")
@click.option("--pretrain-epochs", type=click.IntRange(0), default=5, show_default=True,
              help="Epochs of greedy pretraining for each layer.")
@click.option("--epochs", type=click.IntRange(0), default=10, show_default=True,
              help="Epochs of end-to-end fine-tuning.")
@click.option("--min-steps", type=click.IntRange(0), default=400, show_default=True,
              help="Fine-tune for at least this many updates, adding epochs on a small corpus.")
@click.option("--batch-size", default="auto", show_default=True, callback=batch_size,
              help="Rows per training step; auto is a 32nd of the corpus, between 16 and 128.")
@click.option("--learning-rate", type=click.FloatRange(0, min_open=True), default=1e-3, show_default=True)
@click.option("--max-features", type=click.IntRange(1), default=10000, show_default=True,
              help="Largest vocabulary, keeping the most frequent terms.")
@click.option("--min-df", type=Number(), default=2, show_default=True,
              help="Drop terms in fewer documents than this (a count, or a share if fractional).")
@click.option("--max-df", type=Number(), default=0.5, show_default=True,
              help="Drop terms in more documents than this (a share, or a count if whole).")
@click.option("--weighting", type=click.Choice(WEIGHTINGS), default="log1p", show_default=True,
              help="How term counts feed the network.")
@click.option("--user-dict", type=click.Path(path_type=Path), help="A jieba user dictionary file.")
@click.option("--trees", type=click.IntRange(1), default=32, show_default=True, help="Annoy trees.")
@click.option("--seed", type=int, default=0, show_default=True, help="Fixes the model, the codes and the index.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or warnings on stderr.")
@click.option("--plain", is_flag=True, help="A readable summary instead of a JSON line.")
def index(corpus_dir, output, patterns, bits, hidden, pretrain_epochs, epochs, min_steps, batch_size, learning_rate,
          max_features, min_df, max_df, weighting, user_dict, trees, seed, quiet, plain):
    """Index the text files under DIR (.txt and .md by default)."""
    from semhash.features import TextFeatures
    from semhash.model import StackedAutoencoder
    from semhash.tokenizer import JiebaTokenizer

    started = time.perf_counter()
    warn = None if quiet else (lambda message: click.echo(f"semhash: warning: {message}", err=True))
    corpus = TextCorpus(corpus_dir, patterns, on_warning=warn)
    output = output or INDEXES / corpus_dir.resolve().name
    features = TextFeatures(JiebaTokenizer(user_dict=user_dict), max_features=max_features,
                            min_df=min_df, max_df=max_df, weighting=weighting)
    model = StackedAutoencoder(hidden=hidden, bits=bits, pretrain_epochs=pretrain_epochs, epochs=epochs,
                               min_steps=min_steps,
                               batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                               verbose=not quiet)
    built = Index.build(corpus, features, model, trees=trees, show_progress=not quiet).save(output)
    counts = built.manifest["counts"]
    row = {
        "index": str(output),
        "documents": counts["documents"],
        "skipped": counts["skipped"],
        "vocabulary": built.manifest["features"]["vocabulary_size"],
        "bits": bits,
        "seconds": round(time.perf_counter() - started, 1),
    }
    skipped = sum(counts["skipped"].values())
    emit(row, f"indexed {row['documents']} documents ({skipped} skipped) into {output} "
              f"with {row['vocabulary']} terms and {bits}-bit codes in {row['seconds']} s", plain)


@cli.command()
@click.argument("text", required=False)
@click.option("-f", "--file", "text_file", type=click.Path(path_type=Path), help="Query with this file's text.")
@click.option("--like", "like_id", metavar="ID", help="Query with an indexed document, by its id.")
@click.option("-k", type=click.IntRange(1), default=10, show_default=True, help="How many results.")
@click.option("--index", "index_dir", type=click.Path(path_type=Path),
              help="Index folder [default: the only one under indexes/].")
@click.option("--exact", is_flag=True, help="Rank by an exact Hamming scan of all codes instead of Annoy.")
@click.option("--search-k", type=click.IntRange(1), help="Annoy nodes to inspect [default: 10 x trees x k].")
@click.option("--plain", is_flag=True, help="A readable table instead of JSON lines.")
def query(text, text_file, like_id, k, index_dir, exact, search_k, plain):
    """Find the documents nearest in meaning to TEXT ('-' reads stdin), a --file or --like ID."""
    given = [name for name, value in (("TEXT", text), ("--file", text_file), ("--like", like_id)) if value is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of TEXT, --file F or --like ID")
    if text == "-":
        text = sys.stdin.read()
    elif text_file is not None:
        text = read_text(text_file)
    if text is not None and not text.strip():
        raise click.UsageError("the query text is empty; give some words to search for")
    opened = Index.open(index_dir or default_index())
    if like_id is not None:
        hits = opened.like(like_id, k, exact, search_k)
    else:
        hits = opened.query(text, k, exact, search_k)
    label_width = max([5, *(len(str(hit["label"] or "-")) for hit in hits)])
    id_width = max([2, *(len(hit["id"]) for hit in hits)])
    if plain:
        click.echo(f"{'rank':>4}  {'dist':>4}  {'score':>5}  {'label':<{label_width}}  {'id':<{id_width}}  snippet")
    for rank, hit in enumerate(hits, 1):
        line = (f"{rank:>4}  {hit['distance']:>4}  {hit['score']:>5.3f}  {str(hit['label'] or '-'):<{label_width}}  "
                f"{hit['id']:<{id_width}}  {hit['snippet'][:60]}")
        emit(hit, line, plain)


@cli.command()
@click.argument("index_dir", metavar="INDEX", required=False, type=click.Path(path_type=Path))
@click.option("--plain", is_flag=True, help="A readable summary instead of JSON.")
def info(index_dir, plain):
    """Show an index's manifest and how evenly each bit splits its documents."""
    opened = Index.open(index_dir or default_index())
    balance = [round(float(share), 4) for share in opened.bit_balance()]
    if not plain:
        emit({**opened.manifest, "bit_balance": balance})
        return
    manifest = opened.manifest
    features, model = manifest["features"], manifest["model"]
    lines = [
        f"index      {opened.folder}  (format {manifest['format_version']}, semhash {manifest['semhash_version']})",
        f"source     {manifest['source']['root']}  ({', '.join(manifest['source']['patterns'])})",
        f"documents  {manifest['counts']['documents']}  skipped {manifest['counts']['skipped'] or 'none'}",
        f"features   {features['vocabulary_size']} terms, {features['weighting']}, min_df {features['min_df']}, "
        f"max_df {features['max_df']}",
        f"model      {' -> '.join(str(s) for s in [features['vocabulary_size'], *model['hidden'], model['bits']])}, "
        f"seed {model['seed']}",
        f"annoy      {manifest['annoy']['trees']} trees, hamming",
        f"bit balance  min {min(balance):.3f}  mean {sum(balance) / len(balance):.3f}  max {max(balance):.3f}",
        "per bit    " + " ".join(f"{share:.2f}" for share in balance),
    ]
    click.echo("\n".join(lines))


def main():
    cli(prog_name="semhash")


if __name__ == "__main__":
    main()
