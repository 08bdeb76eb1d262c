"""The `semhash` command: index a folder of documents, query it, describe an index."""

import json
import os
import signal
import sys
import time
from pathlib import Path

import click

from . import __version__, defaults
from .defaults import (
    BITS,
    CODER,
    CODERS,
    FEATURES,
    MAP_POINTS,
    MAP_PROJECTIONS,
    SEED,
    SIZE,
    TRAIN_SAMPLE,
    TREES,
    TSNE_POINTS,
    described,
)
from .errors import SemhashError, UsageProblem
from .features.patches import PatchFeatures
from .features.text import WEIGHTINGS, TextFeatures
from .index.backends import BACKENDS
from .index.index import Index
from .index.store import MANIFEST, check_destination
from .modality import IMAGES, MAX_QUERY_BYTES, MODALITIES, SOURCE_KINDS, check_query_size, of_source_kind
from .models.autoencoder import (
    ARCHITECTURES,
    BINARIZERS,
    CLUSTERS,
    CODE_LAYERS,
    FINETUNE_EPOCHS,
    GRAPH_EIGENVECTORS,
    JOINED_MEMBERS,
    MEMBER_BITS,
    PRINCIPAL_AXES,
)
from .sources.images import MAX_IMAGE_PIXELS
from .sources.text import DEFAULT_PATTERNS, MAX_DOCUMENT_BYTES, decode, read_text

INDEXES = Path("indexes")
TEXT_DEFAULTS = TextFeatures()  # the text options default to the features' own settings
PATCH_DEFAULTS = PatchFeatures()


class Terminated(Exception):
    """SIGTERM, raised where the program is, so that unfinished writes are cleaned up on the way out."""


def _terminate(signum, frame):
    raise Terminated


class Group(click.Group):
    """Turns every failure into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UsageProblem as error:
            raise click.UsageError(str(error)) from None
        except SemhashError as error:
            raise click.ClickException(str(error)) from None
        except KeyboardInterrupt:
            click.echo("semhash: interrupted; any earlier index was left as it was", err=True)
            ctx.exit(130)
        except Terminated:
            click.echo("semhash: terminated; any earlier index was left as it was", err=True)
            ctx.exit(143)
        except BrokenPipeError:
            # The reader stopped early (`semhash query ... | head`): stop quietly, as a program
            # killed by SIGPIPE would, and point stdout at nothing so that exit flushes nowhere.
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):  # io.UnsupportedOperation is both
                pass
            ctx.exit(141)
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


def positive_or_auto(what, least=1):
    """A callback taking a whole number of `what`, `least` or more (a positive one by default), or auto."""

    def check(ctx, param, value):
        if value is None or value == "auto":
            return value
        try:
            number = int(value)
        except ValueError:
            number = least - 1
        if number < least:
            raise click.BadParameter(f"give a {'positive number' if least == 1 else f'number, {least} or more,'} "
                                     f"of {what}, or auto")
        return number

    return check


def cluster_counts(ctx, param, value):
    """A whole number of clusters, 0 or more, several positive ones separated by commas (one member each), or auto."""
    if value is None or value == "auto":
        return value
    try:
        counts = tuple(int(count) for count in value.split(","))
    except ValueError:
        counts = (-1,)
    if len(counts) == 1 and counts[0] >= 0:
        return counts[0]
    if any(count < 1 for count in counts):
        raise click.BadParameter("give a number, 0 or more, of clusters, several positive ones separated by "
                                 "commas, or auto")
    return counts


def layer_sizes(ctx, param, value):
    if value is None:
        return None
    try:
        sizes = tuple(int(size) for size in value.split(",") if size.strip())
    except ValueError:
        raise click.BadParameter("give layer sizes as integers separated by commas, e.g. 500,250") from None
    if any(size < 1 for size in sizes):
        raise click.BadParameter("layer sizes must be positive")
    return sizes


def model_options(command):
    """The model settings that `index` and `evaluate` both take; each defaults to the model's own."""
    options = [
        click.option("--hidden", callback=layer_sizes,
                     help=f"Dense: sizes of the hidden layers before the code layer [default: {described('hidden')}]."),
        click.option("--filters", callback=layer_sizes,
                     help=f"Conv: channels of each convolution block [default: {described('filters')}]."),
        click.option("--pretrain-epochs", type=click.IntRange(0),
                     help=f"Epochs of greedy pretraining for each layer [default: {described('pretrain_epochs')}]."),
        click.option("--epochs", callback=positive_or_auto("epochs", least=0),
                     help=f"Epochs of end-to-end fine-tuning; auto is {FINETUNE_EPOCHS}, or none with labels, whose "
                          f"own fine-tuning follows [default: {described('epochs')}]."),
        click.option("--min-steps", type=click.IntRange(0),
                     help="Fine-tune for at least this many updates, adding epochs on a small corpus "
                          f"[default: {described('min_steps')}]."),
        click.option("--min-pretrain-steps", type=click.IntRange(0),
                     help="Pretrain each layer for at least this many updates, adding epochs on a small corpus "
                          f"[default: {described('min_pretrain_steps')}]."),
        click.option("--neighbours", type=click.IntRange(0),
                     help="Rebuild each item mixed with this many of its nearest items, so near items share codes; "
                          f"0 rebuilds each alone [default: {described('neighbours')}]."),
        click.option("--neighbour-weight", type=click.FloatRange(0, 1),
                     help=f"Share of the neighbours in that mix [default: {described('neighbour_weight')}]."),
        click.option("--code-layer", type=click.Choice(CODE_LAYERS),
                     help="How the code layer trains: Gaussian noise before its sigmoid, or Bernoulli bits with a "
                          f"KL penalty [default: {described('code_layer')}]."),
        click.option("--sparsity", type=click.FloatRange(0),
                     help=f"Weight of an L1 penalty on the codes; 0 for none [default: {described('sparsity')}]."),
        click.option("--members", callback=positive_or_auto("members"),
                     help="Dense: train this many autoencoders, each on its own seed, join their code layers side by "
                          f"side and cut that into the bits by PCA-ITQ; auto is {JOINED_MEMBERS}, or 1 with labels "
                          f"[default: {described('members')}]."),
        click.option("--member-bits", callback=positive_or_auto("bits"),
                     help=f"Dense: the code layer of each member; auto is an equal share of the bits, at least {MEMBER_BITS} "
                          f"[default: {described('member_bits')}]."),
        click.option("--principal-axes", callback=positive_or_auto("axes", least=0),
                     help="Dense: join the input's top principal axes, as many as this, to the members' code layers "
                          f"before the cut; auto is {PRINCIPAL_AXES} beside several members, 0 for none "
                          f"[default: {described('principal_axes')}]."),
        click.option("--graph-eigenvectors", callback=positive_or_auto("eigenvectors", least=0),
                     help="Dense: join this many units learned from the neighbour graph (its top eigenvectors, "
                          "read from the hidden layer) to the members' code layers before the cut; auto is "
                          f"{GRAPH_EIGENVECTORS} beside several members, 0 for none "
                          f"[default: {described('graph_eigenvectors')}]."),
        click.option("--clusters", callback=cluster_counts,
                     help="Dense: train one more member on this many spectral clusters of the graph member's graph "
                          "as labels (one for each of several counts, e.g. 64,16) and join it before the cut; auto "
                          f"is {','.join(map(str, CLUSTERS))} beside a graph member without labels, 0 for none "
                          f"[default: {described('clusters')}]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def coder_option(command):
    """How `index` and `evaluate` code the items: self-checked, or by the coder named."""
    return click.option(
        "--coder", type=click.Choice(CODERS), default=CODER, show_default=True,
        help="autoencoder or pca-itq: fit that one alone; self-check: fit both and keep the one whose codes "
             "better keep a held-out seeded sample of items' exact nearest items by feature distance, as `info` "
             "shows (it measured a poor guide to labelled precision: see docs/RESULTS.md).")(command)


def image_feature_options(command):
    """The image feature settings that `index` and `evaluate` both take."""
    options = [
        click.option("--image-features", "feature_kind", type=click.Choice(sorted(IMAGES.FEATURES)),
                     help="Images: describe each by patch features learned from the images (k-means over whitened "
                          "patches) or feed its pixels [default: "
                          + ", ".join(f"{kind} for --arch {arch}" for (modality, arch), kind in FEATURES.items()
                                      if modality == IMAGES.name) + "]."),
        click.option("--centroids", type=click.IntRange(1),
                     help=f"Patch features: k-means centroids, summed over a {PATCH_DEFAULTS.grid}x{PATCH_DEFAULTS.grid} grid "
                          f"of each image [default: {PATCH_DEFAULTS.centroids}]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def chosen_features(modality, **options):
    """The unfitted features of `modality` that the options ask for, or a UsageError naming the clash."""
    try:
        return modality.features(**options)
    except SemhashError as error:
        raise click.UsageError(f"{error} (--image-features, --centroids, --arch)") from None


def picked(options, names):
    """The options among `names` that have a value."""
    return settings_given(**{name: options[name] for name in names})


def settings_given(**settings):
    """The settings the user gave: those not None."""
    return {name: value for name, value in settings.items() if value is not None}


def emit(row, plain_line=None, plain=False):
    """One JSON line on stdout, or the human line when --plain."""
    click.echo(plain_line if plain else json.dumps(row, ensure_ascii=False))


def all_indexes():
    """Every index under indexes/, or a UsageError saying how to build one."""
    found = sorted(path for path in INDEXES.iterdir() if (path / MANIFEST).is_file()) if INDEXES.is_dir() else []
    if not found:
        raise click.UsageError(f"no index under {INDEXES}/; build one with `semhash index DIR` or name one (--index, or INDEX)")
    return found


def default_index():
    """The only index under indexes/, or a UsageError saying how to choose."""
    found = all_indexes()
    if len(found) > 1:
        names = ", ".join(str(path) for path in found)
        raise click.UsageError(f"several indexes under {INDEXES}/ ({names}); choose one with --index")
    return found[0]


@click.group(cls=Group)
@click.version_option(__version__, prog_name="semhash")
def cli():
    """Semantic hashing: turn documents into short binary codes and search them by meaning."""




def given_options(ctx, names):
    """The options among `names` that the user set on the command line."""
    return [name for name in names if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]


def inapplicable(modality, source_kind):
    """The `index` options that do not apply to a corpus of `source_kind`: other modalities' own,
    and this modality's own that its kind of source does not take."""
    others = [name for other in MODALITIES.values() if other is not modality for name in other.options]
    return others + list(modality.inapplicable(source_kind))


def misplaced(ctx, names, kind):
    """A UsageError for options that do not apply to what is being indexed."""
    flags = [next(param.opts[0] for param in ctx.command.params if param.name == name)
             for name in given_options(ctx, names)]
    if flags:
        raise click.UsageError(f"{', '.join(flags)} only apply to other kinds of corpus than {kind}")


def misplaced_for_arch(ctx, arch):
    """A UsageError for model options that the image model `arch` does not take."""
    dense_only = ("hidden", "members", "member_bits", "principal_axes", "graph_eigenvectors", "clusters")
    misplaced(ctx, ("filters",) if arch == "dense" else dense_only, f"a {arch} model")


def index_name(path):
    """indexes/<name>: a folder's name, or an archive's without its .tar.gz."""
    name = path.resolve().name
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@cli.command()
@click.argument("corpus_path", metavar="PATH", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Index folder [default: indexes/<name of PATH>].")
@click.option("--kind", type=click.Choice(["auto", *SOURCE_KINDS]), default="auto", show_default=True,
              help="What PATH holds: text files, a file of one document a row, an image folder, or CIFAR-10 "
                   "batches (folder or .tar.gz).")
@click.option("--lines", is_flag=True, help="PATH is a text file of one document a line (as --kind lines).")
@click.option("--text-field", help="Line corpora: the field holding the text [default: text].")
@click.option("--id-field", help="Line corpora: the field holding the id [default: id where there is one, "
                                 "else FILE:LINE].")
@click.option("--label-field", help="Line corpora: the field holding the label [default: label where there is one].")
@click.option("--train-sample", type=click.IntRange(2), default=TRAIN_SAMPLE, show_default=True,
              help="Line corpora: fit the vocabulary, the features and the model on a seeded sample of this many "
                   "rows, then encode every row.")
@click.option("--workers", type=click.IntRange(1),
              help="Line corpora: encode on a local Dask cluster of this many worker processes.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Line corpora: encode on the running Dask cluster at ADDRESS (its workers must see PATH and "
                   "the output's folder at the same paths).")
@click.option("--glob", "patterns", multiple=True, default=DEFAULT_PATTERNS, show_default=True,
              help="Text: file name pattern to index, searched recursively; repeat for several.")
@click.option("--max-document-bytes", type=click.IntRange(1), default=MAX_DOCUMENT_BYTES, show_default=True,
              help="Text: read at most this many bytes of a file; a longer one is indexed up to there, with a warning.")
@click.option("--follow-links", is_flag=True,
              help="Folders: also read files through links that lead out of PATH (links inside it are always read).")
@click.option("--split", type=click.Choice(["train", "test", "all"]), default="train", show_default=True,
              help="CIFAR-10: which batches to index.")
@click.option("--size", type=click.IntRange(1, 1024), default=SIZE, show_default=True,
              help="Image folders: the side, in pixels, that images are resized to.")
@click.option("--max-image-pixels", type=click.IntRange(1), default=MAX_IMAGE_PIXELS, show_default=True,
              help="Image folders: skip images of more pixels than this (width x height), before decoding them.")
@click.option("--arch", type=click.Choice(sorted(ARCHITECTURES)), default="dense", show_default=True,
              help="Images: a dense or a convolutional stacked autoencoder.")
@image_feature_options
@click.option("--bits", type=click.IntRange(1, 1024), default=BITS, show_default=True, help="Bits per code.")
@coder_option
@model_options
@click.option("--batch-size", callback=positive_or_auto("rows"),
              help=f"Rows per training step; auto is a 32nd of the corpus, between 16 and 128 "
                   f"[default: {described('batch_size')}].")
@click.option("--learning-rate", type=click.FloatRange(0, min_open=True),
              help=f"Adam's step size [default: {described('learning_rate')}].")
@click.option("--binarize", type=click.Choice(BINARIZERS),
              help=f"Turn the code layer into bits by an ITQ rotation or at each unit's median "
                   f"[default: {described('binarize')}].")
@click.option("--max-features", type=click.IntRange(1), default=TEXT_DEFAULTS.max_features, show_default=True,
              help="Text: largest vocabulary, keeping the most frequent terms.")
@click.option("--min-df", type=Number(), default=TEXT_DEFAULTS.min_df, show_default=True,
              help="Text: drop terms in fewer documents than this (a count, or a share if fractional).")
@click.option("--max-df", type=Number(), default=TEXT_DEFAULTS.max_df, show_default=True,
              help="Text: drop terms in more documents than this (a share, or a count if whole).")
@click.option("--weighting", type=click.Choice(WEIGHTINGS), default=TEXT_DEFAULTS.weighting, show_default=True,
              help="Text: how term counts feed the network.")
@click.option("--user-dict", type=click.Path(path_type=Path), help="Text: a jieba user dictionary file.")
@click.option("--backend", type=click.Choice(list(BACKENDS)),
              help="The search queries use unless they name another, its structures stored in the index: exact "
                   "(a scan), mih (multi-index hash tables) or annoy [default: exact up to 1,000,000 items, mih beyond].")
@click.option("--trees", type=click.IntRange(1), default=TREES, show_default=True,
              help="Annoy trees, where Annoy is asked for.")
@click.option("--seed", type=int, default=SEED, show_default=True, help="Fixes the model, the codes and the index.")
@click.option("--retrain", is_flag=True,
              help="Train a new model from scratch, even where --output holds an index of PATH that could be "
                   "brought up to date (new, changed and removed files) without training.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or warnings on stderr.")
@click.option("--plain", is_flag=True, help="A readable summary instead of a JSON line.")
@click.pass_context
def index(ctx, corpus_path, output, kind, lines, text_field, id_field, label_field, train_sample, workers, scheduler,
          patterns, max_document_bytes, follow_links, split, size, max_image_pixels,
          arch, feature_kind, centroids, bits, coder, hidden, filters,
          pretrain_epochs, epochs, min_steps, min_pretrain_steps, code_layer, sparsity, members, member_bits,
          principal_axes, graph_eigenvectors, clusters, batch_size, learning_rate, binarize, neighbours, neighbour_weight,
          max_features, min_df, max_df, weighting, user_dict, backend, trees, seed, retrain, quiet, plain):
    """Index PATH: a folder of text files (.txt and .md by default), a file of one document a row
    (.jsonl, .csv, .tsv, .parquet, or a text file with --lines), a folder of images, or CIFAR-10 (the
    python or binary batches, as a folder or the .tar.gz archive).

    Where the output already holds an index of the same folder, it is brought up to date instead:
    new and changed files are encoded with its model and vanished ones removed, without training
    (--retrain trains anew)."""
    from .sources.detect import detect_kind

    started = time.perf_counter()
    warn = None if quiet else (lambda message: click.echo(f"semhash: warning: {message}", err=True))
    if lines and kind not in ("auto", "lines"):
        raise click.UsageError(f"--lines reads PATH as a line corpus, not as --kind {kind}")
    if workers is not None and scheduler is not None:
        raise click.UsageError("give --workers or --scheduler, not both")
    source_kind = "lines" if lines else detect_kind(corpus_path) if kind == "auto" else SOURCE_KINDS[kind]
    modality = of_source_kind(source_kind)
    output = output or INDEXES / index_name(corpus_path)
    try:
        check_destination(output, source=corpus_path)
    except SemhashError as error:
        raise click.UsageError(str(error)) from None
    misplaced(ctx, inapplicable(modality, source_kind), source_kind)
    if source_kind != "lines":
        misplaced(ctx, ("train_sample", "workers", "scheduler"), source_kind)
    misplaced_for_arch(ctx, arch)
    training = settings_given(pretrain_epochs=pretrain_epochs, epochs=epochs, min_steps=min_steps,
                              min_pretrain_steps=min_pretrain_steps, batch_size=batch_size,
                              learning_rate=learning_rate, binarize=binarize, neighbours=neighbours,
                              neighbour_weight=neighbour_weight, hidden=hidden or None, filters=filters or None,
                              code_layer=code_layer, sparsity=sparsity, members=members,
                              member_bits=member_bits, principal_axes=principal_axes,
                              graph_eigenvectors=graph_eigenvectors, clusters=clusters)
    if coder == defaults.PCA_ITQ and training:
        flags = [f"--{name.replace('_', '-')}" for name in training]
        raise click.UsageError(f"{', '.join(flags)} train the autoencoder, and --coder pca-itq fits none; "
                               "leave them out or choose another coder")
    training.update(bits=bits, seed=seed, verbose=not quiet)
    options = ctx.params
    source = modality.source(corpus_path, source_kind, on_warning=warn, **picked(options, modality.source_options))
    existing = None if retrain else updatable(output, modality, source_kind, corpus_path)
    if existing is not None:
        changed = changed_settings(ctx, existing)
        if changed:
            raise click.UsageError(f"{output} was built with other settings: {'; '.join(changed)}; give --retrain "
                                   "to train anew with these, or leave them out to update it")
        report_update(Index.open(output).update(source, show_progress=not quiet), output, modality, plain, quiet)
        return
    features = chosen_features(modality, verbose=not quiet, **picked(options, modality.feature_options))
    model = defaults.coder(modality.name, defaults.model(modality.name, arch, features.kind, **training), coder)
    if source_kind == "lines":
        built = index_lines(source, output, features, model, trees, backend, train_sample, workers, scheduler,
                            not quiet)
    else:
        built = Index.build(source, features, model, trees=trees, backend=backend, show_progress=not quiet)
        built.save(output, show_progress=not quiet)
    counts = built.manifest["counts"]
    row = {
        "index": str(output),
        "kind": built.manifest["kind"],
        "documents": counts["documents"],
        "skipped": counts["skipped"],
        "bits": bits,
        "coder": built.manifest["coder"]["chosen"],
        "seconds": round(time.perf_counter() - started, 1),
        **modality.summary(built.manifest),
    }
    skipped = sum(counts["skipped"].values())
    emit(row, f"indexed {row['documents']} {modality.items} ({skipped} skipped) into {output} with "
              f"{modality.summary_words(row)}{bits}-bit codes ({coder_words(built.manifest['coder'])}) "
              f"in {row['seconds']} s", plain)


def coder_words(coder):
    """What `--plain` says of an index's coder: the one kept, and the self-check's scores where one ran."""
    check = coder.get("self_check")
    if not check:
        return f"{coder['chosen']}{', as asked' if 'asked' in coder else ''}"
    if not check["scores"]:
        return f"{coder['chosen']}: not checked ({'; '.join(check.get('left_out', {}).values())})"
    scores = ", ".join(f"{name} {score:.3f}" for name, score in check["scores"].items())
    return (f"{coder['chosen']}, chosen by the self-check: exact neighbours kept {scores} "
            f"({check['check_items']} {'held-out ' if check['held_out'] else ''}items)")


def updatable(output, modality, source_kind, corpus_path):
    """The manifest of the index at `output` when it holds an index of the folder `corpus_path`,
    which can be brought up to date; else None (nothing there, another corpus, or CIFAR-10)."""
    if source_kind not in ("text", "image-folder") or not (output / MANIFEST).is_file():
        return None
    from .index.store import read_manifest

    manifest = read_manifest(output, check_files=False)
    same = manifest["kind"] == modality.name and manifest["source"].get("root") == str(corpus_path.resolve())
    return manifest if same and manifest["format_version"] >= 2 else None


# Where an option of `semhash index` lies in a manifest: (section, key), by the option's name.
RECORDED_AS = {"bits": ("model", "bits"), "seed": ("model", "seed"), "arch": ("model", "arch"), "coder": ("coder", "asked"),
               "centroids": ("features", "n_centroids"), "feature_kind": ("features", "type"),
               "backend": ("backend", "name")}


def changed_settings(ctx, manifest):
    """The options given on the command line whose values differ from those the index in
    `manifest` was built with, each as "--option VALUE (the index has VALUE)"."""
    changed = []
    for param in ctx.command.params:
        name = param.name
        if name in ("quiet", "plain", "output", "retrain", "kind", "corpus_path", "follow_links") \
                or ctx.get_parameter_source(name) != click.core.ParameterSource.COMMANDLINE:
            continue
        given = ctx.params[name]
        section, key = RECORDED_AS.get(name, (None, name))
        sections = [section] if section else ["model", "features", "source"]
        recorded = next((manifest[where][key] for where in sections if key in manifest.get(where, {})), None)
        if recorded is None:  # not recorded (Annoy's trees where Annoy is not stored, a user dictionary)
            continue
        if isinstance(given, (tuple, list)):
            given, recorded = list(given), list(recorded) if isinstance(recorded, (tuple, list)) else recorded
        elif isinstance(recorded, list) and given is not None:  # --size 16 for images of 16 x 16
            given = [given] * len(recorded)
        if given != recorded:
            changed.append(f"{param.opts[0]} {given if not isinstance(given, list) else ','.join(map(str, given))} "
                           f"(the index has {recorded if recorded is not None else 'its own'})")
    return changed


def report_update(report, output, modality, plain, quiet):
    """Print what `Index.update` did, and warn on stderr where the drift calls for retraining."""
    drift = report["drift"]
    row = {"index": str(output), "updated": bool(report["added"] or report["changed"] or report["removed"]),
           **report}
    skipped = sum(report["skipped"].values())
    if row["updated"]:
        line = (f"updated {output}: {report['added']} added, {report['changed']} changed, {report['removed']} "
                f"removed, {report['unchanged']} unchanged{f', {skipped} skipped' if skipped else ''} "
                f"in {report['seconds']} s")
    else:
        line = f"{output} is up to date: {report['unchanged']} {modality.items} unchanged ({report['seconds']} s)"
    emit(row, line, plain)
    if drift["retrain"] and not quiet:
        click.echo(f"semhash: warning: the index has drifted from what its model learned ({', '.join(drift['reasons'])}"
                   f" past its limit); consider `semhash index PATH --retrain`", err=True)


def index_folder_ids(source, paths):
    """The ids of the files `paths` (files, or folders of them) name in `source`, a folder reader:
    every path must lie in the indexed folder and name files of it that the index reads."""
    root = Path(source.root).resolve()
    candidates = {Path(path).resolve(): source.id_of(path) for path in source.paths()}
    ids = []
    for path in paths:
        where = Path(path).resolve()
        if where != root and root not in where.parents:
            raise click.UsageError(f"{path} lies outside the indexed folder {root}; add files inside it, "
                                   "or index the other folder on its own")
        found = [item for candidate, item in candidates.items() if candidate == where or where in candidate.parents]
        if not found:
            raise click.UsageError(f"{path} holds no file the index reads (under {root}: "
                                   f"{', '.join(getattr(source, 'patterns', ['image files']))})")
        ids.extend(found)
    return ids


@cli.command()
@click.argument("index_dir", metavar="INDEX", type=click.Path(path_type=Path))
@click.argument("paths", metavar="PATH...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or warnings on stderr.")
@click.option("--plain", is_flag=True, help="A readable summary instead of a JSON line.")
def add(index_dir, paths, quiet, plain):
    """Add files to INDEX, or encode changed ones again, without training: each PATH a file or a
    folder inside the folder INDEX was built from."""
    opened = Index.open(index_dir)
    warn = None if quiet else (lambda message: click.echo(f"semhash: warning: {message}", err=True))
    source = opened.modality.source_of(opened.manifest["source"], on_warning=warn)
    ids = index_folder_ids(source, paths)
    report_update(opened.add(source.only(ids), show_progress=not quiet), index_dir, opened.modality, plain, quiet)


@cli.command()
@click.argument("index_dir", metavar="INDEX", type=click.Path(path_type=Path))
@click.argument("ids", metavar="ID...", nargs=-1, required=True)
@click.option("--plain", is_flag=True, help="A readable summary instead of a JSON line.")
def remove(index_dir, ids, plain):
    """Remove items from INDEX by their ids (as `query` shows them); they are never returned once
    this has answered. An unknown id removes nothing."""
    started = time.perf_counter()
    opened = Index.open(index_dir)
    removed = opened.remove(ids)
    row = {"index": str(index_dir), "removed": removed, "items": len(opened),
           "seconds": round(time.perf_counter() - started, 2), "drift": opened.drift()}
    emit(row, f"removed {removed} items from {index_dir}; {len(opened)} remain ({row['seconds']} s)", plain)


def index_lines(source, output, features, model, trees, backend, train_sample, workers, scheduler, show_progress):
    """Index a line corpus a partition at a time: here, or on Dask when asked (imported only then)."""
    from .index import encoding

    if workers is None and scheduler is None:
        return encoding.build(source, output, features, model, trees, backend, train_sample,
                              show_progress=show_progress)
    from .index.cluster import Cluster

    with Cluster(workers, scheduler) as cluster:
        return encoding.build(source, output, features, model, trees, backend, train_sample, cluster=cluster,
                              show_progress=show_progress)


@cli.command()
@click.argument("text", required=False)
@click.option("-f", "--file", "text_file", type=click.Path(path_type=Path), help="Query with this file's text.")
@click.option("--image", "image_path", metavar="PATH",
              help="Query with an image file, or one CIFAR-10 image as ARCHIVE#test_batch/17.")
@click.option("--like", "like_id", metavar="ID", help="Query with an indexed document or image, by its id.")
@click.option("-k", type=click.IntRange(1),
              help="How many results [default: 10; with --radius, every item within it, -k the most shown].")
@click.option("--radius", type=click.IntRange(0),
              help="Every item whose code is within this many bits of the query's, nearest first, instead of "
                   "the k nearest (Annoy, which may miss some, gives way to mih).")
@click.option("--index", "index_dir", type=click.Path(path_type=Path),
              help="Index folder [default: the only one under indexes/].")
@click.option("--exact/--annoy", default=None,
              help="Rank by an exact Hamming scan of all codes, or ask Annoy [default: the index's backend].")
@click.option("--backend", type=click.Choice(list(BACKENDS)),
              help="Search by name: exact (a scan of every code), mih (multi-index hashing: exact, and fast at "
                   "millions of codes) or annoy (approximate) [default: the one the index records, as `info` "
                   "shows: exact up to 1,000,000 items, mih beyond, unless `index --backend` chose].")
@click.option("--rerank/--no-rerank", default=True, show_default=True,
              help="Order items at equal Hamming distance by their asymmetric distance to the query's "
                   "real-valued code, and items with identical codes by the cosine between theirs and the "
                   "query's (--like: the item's stored one), rather than by their order in the index.")
@click.option("--search-k", type=click.IntRange(1), help="Annoy nodes to inspect [default: 10 x trees x k].")
@click.option("--grid", type=click.Path(path_type=Path), metavar="OUT.png",
              help="Images: also draw the query and its results, with distances and labels, into a PNG.")
@click.option("--max-query-bytes", type=click.IntRange(1), default=MAX_QUERY_BYTES, show_default=True,
              help="Refuse a longer query text; stdin is read no further.")
@click.option("--plain", is_flag=True, help="A readable table instead of JSON lines.")
def query(text, text_file, image_path, like_id, k, radius, index_dir, exact, backend, rerank, search_k, grid,
          max_query_bytes, plain):
    """Find what is nearest in meaning to TEXT ('-' reads stdin), a --file, an --image or --like ID."""
    given = [name for name, value in (("TEXT", text), ("--file", text_file), ("--image", image_path),
                                      ("--like", like_id)) if value is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of TEXT, --file F, --image PATH or --like ID")
    if exact is not None and backend is not None:
        raise click.UsageError("give --exact, --annoy or --backend, not two of them")
    text = read_query(text, text_file, max_query_bytes)
    if text is not None and not text.strip():
        raise click.UsageError("the query text is empty; give some words to search for")
    if grid is not None:
        from .contact_sheet import check_output

        try:
            check_output(grid)
        except SemhashError as error:
            raise click.UsageError(f"--grid: {error}") from None
    opened = Index.open(index_dir or default_index())
    modality = opened.modality
    if grid is not None:
        modality.check_grid()
    item = None
    if like_id is None:
        item = modality.query_item(text=text, image=image_path, features=opened.features)
    if radius is not None:
        hits = (opened.within(item, radius, exact, max_query_bytes, backend, rerank) if like_id is None
                else opened.within_like(like_id, radius, exact, backend, rerank))[:k]
    elif like_id is None:
        hits = opened.query(item, k or 10, exact, search_k, max_query_bytes, backend, rerank)
    else:
        hits = opened.like(like_id, k or 10, exact, search_k, backend, rerank)
    if grid is not None:
        modality.draw(opened, grid, item, like_id, hits)
    columns = modality.hit_columns()
    label_width = max([5, *(len(str(hit["label"] or "-")) for hit in hits)])
    id_width = max([2, *(len(hit["id"]) for hit in hits)])
    if plain:
        click.echo(f"{'rank':>4}  {'dist':>4}  {'score':>5}  {'label':<{label_width}}  {'id':<{id_width}}"
                   + "".join(f"  {heading}" for heading, _ in columns))
    for rank, hit in enumerate(hits, 1):
        line = (f"{rank:>4}  {hit['distance']:>4}  {hit['score']:>5.3f}  {hit['label'] or '-'!s:<{label_width}}  "
                f"{hit['id']:<{id_width}}" + "".join(f"  {cell(hit)}" for _, cell in columns))
        emit(hit, line, plain)


def read_query(text, text_file, limit):
    """The query's text: TEXT, stdin for '-' (read no further than `limit` bytes) or the file's,
    refused when it is longer than `limit` bytes."""
    if text == "-":
        data = sys.stdin.buffer.read(limit + 1)
        check_query_size(data, limit, "--max-query-bytes")
        text = decode(data)[0]
    elif text_file is not None:
        text = read_text(text_file)
    if text is not None:
        check_query_size(text, limit, "--max-query-bytes")
    return text


@cli.command()
@click.argument("index_dir", metavar="INDEX", required=False, type=click.Path(path_type=Path))
@click.option("--verify", is_flag=True,
              help="Also check every file against its sha256, reading each in full (opening checks the small ones).")
@click.option("--plain", is_flag=True, help="A readable summary instead of JSON.")
def info(index_dir, verify, plain):
    """Show an index's manifest and how evenly each bit splits its documents."""
    opened = Index.open(index_dir or default_index())
    if verify:
        opened.verify()
    balance = [round(float(share), 4) for share in opened.bit_balance()] if len(opened) else []
    drift = opened.drift()
    if not plain:
        emit({**opened.manifest, "bit_balance": balance, "drift": drift})
        return
    manifest = opened.manifest
    model = manifest["model"]
    where, what, first = opened.modality.describe(manifest)
    layers = [first, *model.get("hidden", ()), *(f"conv{count}" for count in model.get("filters", ()))]
    lines = [
        f"index      {opened.folder}  (format {manifest['format_version']}, semhash {manifest['semhash_version']})",
        f"source     {where}",
        f"{manifest['kind']:<10} {manifest['counts']['documents']}  skipped {manifest['counts']['skipped'] or 'none'}",
        f"features   {what}",
        f"model      {model.get('arch', 'dense')}: {' -> '.join(str(s) for s in [*layers, model['bits']])}, "
        f"seed {model['seed']}" + cut_words(manifest.get("training", {}), model),
        f"coder      {coder_words(manifest.get('coder', {'chosen': 'autoencoder'}))}",
        f"search     {search_line(opened)}",
        (f"bit balance  min {min(balance, default=0):.3f}  mean {sum(balance) / max(len(balance), 1):.3f}  "
         f"max {max(balance, default=0):.3f}"),
        f"drift      {drift['unseen_items']} items the model never saw ({drift['unseen_share']:.0%})"
        + (f", {drift['unknown_term_share']:.0%} of the last added terms unknown" if "unknown_term_share" in drift else "")
        + ("; retraining advised (`semhash index PATH --retrain`)" if drift["retrain"] else ""),
        "per bit    " + " ".join(f"{share:.2f}" for share in balance),
    ]
    click.echo("\n".join(lines))


def cut_words(training, model):
    """What `info --plain` adds where the code layer was cut otherwise than the model asked (medians
    where the items were too few for ITQ)."""
    fell_back = training.get("binarize") == "median" and model.get("binarize") == "itq"
    return "; bits cut at medians, too few items for ITQ" if fell_back else ""


def search_line(opened):
    """What `info --plain` says of an index's search: its backend, why, and its shards."""
    backend, shards = opened.manifest["backend"], opened.shards
    settings = "".join(f", {key} {value}" for key, value in backend["settings"].items())
    removed = sum(len(shard.deleted) for shard in shards)
    return (f"{backend['name']} ({backend['chosen']}{settings}); {len(shards)} shard{'s' * (len(shards) != 1)}"
            + (f", {removed} removed items awaiting compaction" if removed else ""))


@cli.command(name="map")
@click.argument("index_dir", metavar="INDEX", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, metavar="OUT.png",
              help="Where to write the map, as a PNG.")
@click.option("--max-points", type=click.IntRange(1), default=MAP_POINTS, show_default=True,
              help=f"Draw a seeded sample of at most this many items (t-SNE: at most {TSNE_POINTS}).")
@click.option("--projection", type=click.Choice(MAP_PROJECTIONS), default="tsne", show_default=True,
              help="t-SNE of the codes (clearer, seconds) or their first two principal components (instant).")
@click.option("--seed", type=int, default=SEED, show_default=True, help="Fixes the sample, t-SNE and the jitter.")
@click.option("--plain", is_flag=True, help="A sentence instead of a JSON line.")
def map_command(index_dir, output, max_points, projection, seed, plain):
    """Draw INDEX's codes in two dimensions (t-SNE of a sample, or their first two principal components),
    coloured by label."""
    from .codemap import CodeMap
    from .contact_sheet import check_output

    try:
        check_output(output)
    except SemhashError as error:
        raise click.UsageError(f"--output: {error}") from None
    opened = Index.open(index_dir or default_index())
    drawn = CodeMap(max_points, seed, projection).fit(opened)
    drawn.write(output, title=f"{opened.folder.name}: {len(drawn.ids_):,} of {len(opened):,} {opened.modality.items}")
    shown = drawn.to_json(len(opened))
    row = {"map": str(output), "items": len(opened), "shown": shown["shown"], "labels": len(drawn.colours_),
           "projection": shown["method"], "explained": shown["explained"]}
    how = ("by t-SNE" if drawn.explained_ is None
           else f"by PCA: the two axes hold {sum(drawn.explained_):.0%} of the bits' variance")
    emit(row, f"drew {row['shown']} of {row['items']} {opened.modality.items} into {output} ({how})", plain)


@cli.command()
@click.argument("index_dirs", metavar="[INDEX]...", nargs=-1, type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on; the default answers this machine only.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="The port to listen on.")
@click.option("--max-upload-bytes", type=click.IntRange(1), default=None,
              help="Refuse a request body over this many bytes with 413 [default: 32 MiB].")
@click.option("-q", "--quiet", is_flag=True, help="Log no requests, only warnings and errors.")
def serve(index_dirs, host, port, max_upload_bytes, quiet):
    """Serve INDEX folders (default: every index under indexes/) over HTTP: a search page at /,
    the API described at /docs. Follows rebuilds of the indexes without a failed request."""
    try:
        from .server import MAX_UPLOAD_BYTES
        from .server import serve as run_server
    except ImportError as error:
        raise SemhashError(f"semhash serve needs the serve extra ({error.name} is missing); "
                           "install it with pip install 'semhash[serve]'") from None
    folders = list(index_dirs) or all_indexes()
    click.echo(f"semhash: serving {', '.join(str(folder) for folder in folders)} at http://{host}:{port}/", err=True)
    run_server(folders, host, port, quiet, max_upload_bytes or MAX_UPLOAD_BYTES)


def bit_lengths(ctx, param, value):
    sizes = layer_sizes(ctx, param, value)
    if not sizes or any(size > 1024 for size in sizes):
        raise click.BadParameter("give code lengths between 1 and 1024, e.g. 16,32,64,128")
    return sizes


@cli.command()
@click.argument("corpus", metavar="CORPUS")
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="Folder holding the benchmark data (20news-bydate.tar.gz, thucnews-headlines/, cifar-10-python.tar.gz).")
@click.option("--bits", default="16,32,64,128", show_default=True, callback=bit_lengths, help="Code lengths to compare.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the rows to this JSON file.")
@click.option("--markdown", "markdown_path", type=click.Path(path_type=Path), help="Write the tables to this Markdown file.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path),
              help="Write precision@100 against bits and the precision-recall curves to this PNG.")
@click.option("--labels", is_flag=True, help="Add semhash-supervised rows: fine-tuned on the database's labels too.")
@click.option("--no-baselines", is_flag=True, help="Only semhash's rows (no exact, LSH, PCAH, PCA-ITQ).")
@click.option("--variants", is_flag=True,
              help="Add rows for the code-layer variants: " + ", ".join(
                  f"semhash-{name} ({', '.join(f'{k}={v}' for k, v in settings.items())})"
                  for name, settings in defaults.VARIANTS.items()) + ".")
@click.option("--arch", type=click.Choice(sorted(ARCHITECTURES)), default="dense", show_default=True,
              help="Images: the model to evaluate.")
@coder_option
@image_feature_options
@model_options
@click.option("--queries", type=click.IntRange(1), help="Score a seeded sample of this many queries [default: all].")
@click.option("--query-share", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2,
              show_default=True, help="A labelled folder: the share of each label held out as queries.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars on stderr.")
@click.option("--plain", is_flag=True, help="Print the Markdown tables instead of JSON lines.")
@click.pass_context
def evaluate(ctx, corpus, data_dir, bits, json_path, markdown_path, plot_path, labels, no_baselines, variants, arch,
             coder, feature_kind, centroids, hidden, filters, pretrain_epochs, epochs, min_steps, min_pretrain_steps,
             neighbours, neighbour_weight, code_layer, sparsity, members, member_bits, principal_axes,
             graph_eigenvectors, clusters, queries, query_share, seed, quiet, plain):
    """Score semhash beside exact search, LSH, PCAH and PCA-ITQ on CORPUS: 20newsgroups,
    thucnews or cifar10 (read from --data), or a folder of text files in label subfolders."""
    from .evaluation.run import Evaluation, markdown, plot

    overrides = settings_given(hidden=hidden, filters=filters, pretrain_epochs=pretrain_epochs, epochs=epochs,
                               min_steps=min_steps, min_pretrain_steps=min_pretrain_steps, neighbours=neighbours,
                               neighbour_weight=neighbour_weight, code_layer=code_layer, sparsity=sparsity,
                               members=members, member_bits=member_bits, principal_axes=principal_axes,
                               graph_eigenvectors=graph_eigenvectors, clusters=clusters)
    # misuse, named before any work
    if corpus == "cifar10":
        misplaced_for_arch(ctx, arch)
    chosen_features(IMAGES, arch=arch, feature_kind=feature_kind, **settings_given(centroids=centroids))
    evaluation = Evaluation(corpus, data_dir, bits=bits, supervised=labels, baselines=not no_baselines,
                            variants=variants, arch=arch, coder=coder,
                            model_params=overrides, image_features=feature_kind,
                            feature_params=settings_given(centroids=centroids), queries=queries,
                            query_share=query_share, seed=seed, verbose=not quiet)
    started = time.perf_counter()

    def announce(row):
        if not plain:
            emit(row)
        elif not quiet:
            click.echo(f"semhash: {row['method']} {row['bits'] or ''} bits: P@100 {row['precision_at_100']:.3f}, "
                       f"mAP@1000 {row['map_at_1000']:.3f}", err=True)

    rows = evaluation.run(on_row=announce)
    seconds = round(time.perf_counter() - started, 1)
    if json_path:
        json_path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    table = markdown(rows) + f"\nWall time: {seconds} s.\n"
    if markdown_path:
        markdown_path.write_text(table, encoding="utf-8")
    if plot_path:
        plot(rows, plot_path)
    if plain:
        click.echo(table)


def main():
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="semhash")


if __name__ == "__main__":
    main()
