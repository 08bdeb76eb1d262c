"""What differs between kinds of item, text and images, gathered in one object each.

A modality knows its sources (how a path is read), its features (which, with what settings, and how
a manifest names them), its defaults, the records it keeps of each item, how a query becomes
feature rows, and how it describes itself for `semhash info` and the command line's output. The
index, the command line and the evaluation ask the modality of their items, and branch on nothing
else; a third kind of item is a third object here.
"""

import collections
import copy
import functools
import itertools
from pathlib import Path

import numpy as np

from . import defaults
from .errors import SemhashError, UsageProblem
from .features.patches import PatchFeatures
from .features.pixels import PixelFeatures
from .features.text import TextFeatures
from .progress import progress_bar
from .sources.lines import LineCorpus, format_of
from .sources.text import DEFAULT_PATTERNS, MAX_DOCUMENT_BYTES, TextCorpus

# A query text is read whole and tokenized at once, so its time and memory grow with it: 1 MiB
# holds some 150,000 English words or 350,000 Chinese characters, far more than a description of
# what to find needs, and tokenizes in about 2 s; a longer query is refused, not read on.
MAX_QUERY_BYTES = 1 << 20


def check_query_size(query, limit=MAX_QUERY_BYTES, setting="max_bytes"):
    """Refuse a query over `limit` bytes (bytes as read, a str as UTF-8), naming the `setting` that raises it."""
    if len(query) > limit or (isinstance(query, str) and len(query.encode("utf-8", "surrogatepass")) > limit):
        raise SemhashError(f"the query is over the limit of {limit:,} bytes; shorten it or raise {setting}")


class Text:
    """Documents: text files, or the rows of a line corpus, read as bags of jieba terms."""

    name = "text"
    item, items = "document", "documents"
    source_kinds = ("text", "lines")
    # The `semhash index` options that apply to text alone (by their parameter names).
    options = ("patterns", "max_document_bytes", "max_features", "min_df", "max_df", "weighting", "user_dict",
               "text_field", "id_field", "label_field")
    line_options = ("text_field", "id_field", "label_field")  # line corpora, not folders
    # Of `semhash index`'s options, those `source` and `features` take.
    source_options = ("patterns", "max_document_bytes", "follow_links", *line_options)
    feature_options = ("user_dict", "max_features", "min_df", "max_df", "weighting")
    query_inputs = "TEXT, --file F or --like ID"

    def inapplicable(self, source_kind):
        """This modality's options that a source of `source_kind` does not take: a folder has no
        fields, a line corpus no file patterns or links."""
        return ("patterns", "follow_links") if source_kind == "lines" else self.line_options

    def source(self, path, kind="text", patterns=DEFAULT_PATTERNS, max_document_bytes=MAX_DOCUMENT_BYTES,
               follow_links=False, on_warning=None, text_field=None, id_field=None, label_field=None):
        """The text files under `path`, or the rows of the file `path` (kind "lines"), as a
        re-iterable corpus."""
        if kind == "lines":
            return LineCorpus(path, format_of(path) or "lines", text_field, id_field, label_field,
                              on_warning=on_warning, max_bytes=max_document_bytes)
        return TextCorpus(path, patterns, on_warning=on_warning, max_bytes=max_document_bytes,
                          follow_links=follow_links)

    def source_of(self, described, on_warning=None):
        """The corpus a manifest's `source` describes, read as it was when indexed, to update the
        index from it."""
        return TextCorpus(described["root"], described["patterns"], on_warning=on_warning,
                          max_bytes=described.get("max_document_bytes", MAX_DOCUMENT_BYTES),
                          follow_links=described.get("follow_links", False))

    def features(self, user_dict=None, verbose=False, **settings):
        """Unfitted features: `settings` are TextFeatures' (max_features, min_df, max_df, weighting)."""
        from .features.tokenizer import JiebaTokenizer

        return TextFeatures(JiebaTokenizer(user_dict=user_dict), **settings)

    def default_features(self, source, verbose=False):
        return TextFeatures()

    def features_class(self, settings):
        return TextFeatures

    def read(self, corpus, features, show_progress=False):
        """Tokenize the corpus and fit `features` on it: (rows, records, what the manifest says of
        the source and its counts). Documents left with no terms are skipped, named and counted."""
        n_files = len(corpus.paths())
        if n_files == 0:
            raise SemhashError(
                f"no files matching {', '.join(corpus.patterns)} under {corpus.root}; "
                "point at a folder of text files or choose them with --glob"
            )
        records = []

        def texts():
            with progress_bar("tokenizing", length=n_files, show=show_progress) as bar:
                for document in corpus:
                    records.append(document.record())
                    bar.update(1)
                    yield document.text

        try:
            X = features.fit_transform(texts())
        except SemhashError:
            if not records:
                reasons = collections.Counter(item.key for item in corpus.skipped)
                raise SemhashError(
                    f"no readable documents under {corpus.root}: {len(corpus.skipped)} files skipped "
                    f"({', '.join(f'{reason} {count}' for reason, count in reasons.items())}); add text files"
                ) from None
            raise
        skipped = collections.Counter(item.key for item in corpus.skipped)
        X, records = self._with_terms(X, records, corpus, skipped)
        described = {
            "source": {"root": str(Path(corpus.root).resolve()), "patterns": list(corpus.patterns),
                       "max_document_bytes": corpus.max_bytes, "follow_links": corpus.follow_links},
            "counts": {
                "documents": len(records),
                "skipped": dict(skipped),
                "decoded_with_replacements": len(corpus.fallbacks),
                "truncated": len(corpus.truncated),
            },
        }
        return X, records, described

    def _with_terms(self, X, records, corpus, skipped):
        """The rows of X and their records with at least one term of the vocabulary; the others
        are named through the corpus's warnings and counted in `skipped` as "no terms"."""
        has_terms = np.diff(X.indptr) > 0
        if has_terms.all():
            return X, records
        for record in itertools.compress(records, ~has_terms):
            if corpus.on_warning is not None:
                corpus.on_warning(f"skipped {record['path']}: no terms: only stop words, numbers or words "
                                  "left out of the vocabulary")
        skipped["no terms"] = int(np.count_nonzero(~has_terms))
        return X[has_terms], list(itertools.compress(records, has_terms))

    def read_more(self, corpus, features, show_progress=False):
        """Read the documents of `corpus` with `features` fitted already, to add them to an index:
        (rows, records, what was skipped and how many of their terms the vocabulary lacks)."""
        records, tally = [], {}

        def texts():
            with progress_bar("tokenizing", length=len(corpus), show=show_progress) as bar:
                for document in corpus:
                    records.append(document.record())
                    bar.update(1)
                    yield document.text

        X = features.weigh(features.counts(texts(), tally))
        skipped = collections.Counter(item.key for item in corpus.skipped)
        X, records = self._with_terms(X, records, corpus, skipped)
        return X, records, {"skipped": dict(skipped), **tally}

    def benchmark_features(self, database, queries, verbose=False, **ignored):
        """(semhash's rows, the baselines' rows, what semhash reads) for the evaluation of texts
        `database` against `queries`, each rows a (database, queries) pair; the baselines' are
        {method suffix: (rows, the exact search's metric)}: TF-IDF rows over the same vocabulary."""
        from .features.tokenizer import JiebaTokenizer

        tokenizer = functools.lru_cache(maxsize=None)(JiebaTokenizer())  # each text is cut once
        features = TextFeatures(tokenizer)
        with progress_bar("tokenizing", length=len(database) + len(queries), show=verbose) as bar:
            features.fit(database)
            counts = []
            for split in (database, queries):
                counts.append(features.counts(split))
                bar.update(len(split))
        tfidf = copy.copy(features)
        tfidf.weighting, tfidf.scale = "tfidf", 1.0
        return tuple(features.weigh(c) for c in counts), {"": (tuple(tfidf.weigh(c) for c in counts), "cosine")}, "text"

    def query_item(self, text=None, image=None, features=None):
        """What a query asks with: its text."""
        if text is None:
            raise UsageProblem(f"this index holds {self.items}; query it with {self.query_inputs}")
        return text

    def query_rows(self, features, text, max_bytes=MAX_QUERY_BYTES):
        """The feature row of a query text of at most `max_bytes`, or a SemhashError if none of its
        words are known."""
        check_query_size(text, max_bytes)
        X = features.transform([text])
        if X.nnz == 0:
            raise SemhashError("none of the query's words are in the index's vocabulary; try other words")
        return X

    def check_grid(self):
        raise UsageProblem(f"--grid draws images, and this index holds {self.items}")

    def summary(self, manifest):
        """What `semhash index` reports beside the counts: the vocabulary."""
        return {"vocabulary": manifest["features"]["vocabulary_size"]}

    def summary_words(self, summary):
        return f"{summary['vocabulary']} terms and "

    def hit_columns(self):
        """The columns of `semhash query --plain` after the id: (heading, how a hit fills it)."""
        return [("snippet", lambda hit: hit["snippet"][:60])]

    def describe(self, manifest):
        """(where the items came from, what the features are, the network's first layer) for info."""
        source, features = manifest["source"], manifest["features"]
        where = f"{source['root']}  ({source.get('format') or ', '.join(source['patterns'])})"
        what = (f"{features['vocabulary_size']} terms, {features['weighting']}, min_df {features['min_df']}, "
                f"max_df {features['max_df']}")
        return where, what, features["vocabulary_size"]


class Images:
    """Images: image folders and CIFAR-10, read as learned patch features or as pixels."""

    name = "images"
    item, items = "image", "images"
    source_kinds = ("image-folder", "cifar-python", "cifar-binary")
    options = ("split", "size", "max_image_pixels", "arch", "filters", "feature_kind", "centroids")
    folder_options = ("size", "max_image_pixels", "follow_links")  # image folders, not CIFAR-10
    source_options = ("split", "size", "max_image_pixels", "follow_links")
    feature_options = ("arch", "feature_kind", "size", "centroids")
    query_inputs = "--image PATH or --like ID"
    FEATURES = {features.kind: features for features in (PatchFeatures, PixelFeatures)}

    def inapplicable(self, source_kind):
        """This modality's options that a source of `source_kind` does not take: a folder has no
        split; CIFAR-10's images come at one size and from no folder of files."""
        return ("split",) if source_kind == "image-folder" else self.folder_options

    def source(self, path, kind=None, split="train", size=defaults.SIZE, max_image_pixels=None, follow_links=False,
               on_warning=None):
        """The image reader for `path`: an image folder, or CIFAR-10's `split`."""
        from .sources.detect import open_images
        from .sources.images import MAX_IMAGE_PIXELS

        return open_images(path, kind, split=split, size=(size, size), on_warning=on_warning,
                           max_pixels=max_image_pixels or MAX_IMAGE_PIXELS, follow_links=follow_links)

    def source_of(self, described, on_warning=None):
        """The image folder a manifest's `source` describes, read as it was when indexed, to update
        the index from it; CIFAR-10's archives do not change, and are refused."""
        from .sources.images import MAX_IMAGE_PIXELS, ImageFolder

        if described.get("kind") != ImageFolder.kind:
            raise SemhashError(f"{described.get('root')} is a CIFAR-10 archive, which does not change: items are added "
                               "to and removed from indexes of folders; rebuild it with `semhash index --retrain`")
        return ImageFolder(described["root"], described["size"], on_warning=on_warning,
                           max_pixels=described.get("max_pixels", MAX_IMAGE_PIXELS),
                           follow_links=described.get("follow_links", False))

    def features(self, arch="dense", feature_kind=None, size=defaults.SIZE, verbose=False, **settings):
        """Unfitted image features of `feature_kind` ("patches" or "pixels"), by default those that
        suit the model `arch`, for images of `size` (a side, or height and width); `settings` are
        PatchFeatures' (centroids, ...)."""
        feature_kind = defaults.features_for(self.name, arch, feature_kind)
        size = (size, size) if isinstance(size, int) else tuple(size)
        if feature_kind == "pixels":
            if settings:
                raise SemhashError(f"{', '.join(settings)} only apply to patch features, not pixels")
            return PixelFeatures(size=size)
        return PatchFeatures(size=size, verbose=verbose, **settings)

    def default_features(self, source, verbose=False):
        return self.features(size=source.size, verbose=verbose)

    def features_class(self, settings):
        """The features an index's manifest names; image indexes from before patch features hold pixels."""
        return self.FEATURES[settings.get("type", "pixels")]

    def read(self, images, features, show_progress=False):
        """Read the images and fit `features` on them: (rows, records, what the manifest says of the
        source and its counts). The pixels are held as uint8 while the features are fitted (150 MB
        for CIFAR-10's 50,000 training images) and not stored: each record names its source."""
        chunks, records = [], []
        with progress_bar("reading images", length=len(images), show=show_progress) as bar:
            for batch in images:
                chunks.append(batch.pixels)
                records.extend(self._records(batch))
                bar.update(len(batch.ids))
        if not records:
            raise SemhashError(
                f"no readable images in {images.root} ({len(images.skipped)} files skipped); "
                "point at a folder of images or a CIFAR-10 archive"
            )
        X = features.fit_transform(np.concatenate(chunks))
        del chunks
        described = {
            "source": images.describe(),
            "counts": {
                "documents": len(records),
                "skipped": dict(collections.Counter(item.key for item in images.skipped)),
            },
        }
        return X, records, described

    def _records(self, batch):
        """The records of a batch of images: id, label and source, and the file's sha256 where
        the images are files."""
        hashes = batch.hashes or [None] * len(batch.ids)
        return [{"id": id_, "label": label, "source": source, **({"sha256": digest} if digest else {})}
                for id_, label, source, digest in zip(batch.ids, batch.labels, batch.sources, hashes)]

    def read_more(self, images, features, show_progress=False):
        """Read the images of `images` with `features` fitted already, to add them to an index:
        (rows, records, what was skipped), a batch of features at a time."""
        rows, records = [], []
        with progress_bar("reading images", length=len(images), show=show_progress) as bar:
            for batch in images:
                rows.append(features.transform(batch.pixels))
                records.extend(self._records(batch))
                bar.update(len(batch.ids))
        X = np.concatenate(rows) if rows else np.empty((0, 0), np.float32)
        return X, records, {"skipped": dict(collections.Counter(item.key for item in images.skipped))}

    def benchmark_features(self, database, queries, arch="dense", feature_kind=None, verbose=False, **settings):
        """(semhash's rows, the baselines' rows, what semhash reads) for the evaluation of images
        `database` against `queries`: semhash's patch features or standardized pixels, and pixels
        in [0, 1] for the baselines, which also run on patch features where semhash reads them."""
        features = self.features(arch, feature_kind, database.shape[1:3], verbose, **settings)
        ours = (features.fit_transform(database), features.transform(queries))
        flat = tuple(x.reshape(len(x), -1).astype(np.float32) / 255 for x in (database, queries))
        plain = {"": (flat, "euclidean")}
        if features.kind == "patches":
            plain["-patches"] = (ours, "euclidean")
        return ours, plain, features.kind

    def query_item(self, text=None, image=None, features=None):
        """What a query asks with: the pixels of its image, at the size the index reads."""
        if image is None:
            raise UsageProblem(f"this index holds {self.items}; query it with {self.query_inputs}")
        from .sources.originals import read_query_image

        return read_query_image(image, tuple(features.size))

    def query_rows(self, features, pixels, max_bytes=None):
        """The feature row of a query image's pixels (read within the image limits already)."""
        return features.transform(pixels[None])

    def check_grid(self):
        pass

    def draw(self, index, path, query_pixels, like_id, hits):
        """Write the contact sheet: the query image (or the indexed item asked `like`), then each
        result with its distance and label."""
        from .contact_sheet import contact_sheet
        from .sources.originals import read_sources

        size = tuple(index.features.size)
        if query_pixels is None:
            query_pixels = read_sources([index.record(like_id)["source"]], size)[0]
        pictures = read_sources([hit["source"] for hit in hits], size)
        contact_sheet(query_pixels, [(pixels, f"d={hit['distance']}: {hit['label'] or '-'}")
                                     for pixels, hit in zip(pictures, hits)], path)

    def summary(self, manifest):
        return {}

    def summary_words(self, summary):
        return ""

    def hit_columns(self):
        return []

    def describe(self, manifest):
        source, features = manifest["source"], manifest["features"]
        where = f"{source['root']}  ({source['kind']}{', ' + source['split'] if 'split' in source else ''})"
        height, width = features["size"]
        if features.get("type") == "patches":
            side = features["patch"]
            grid, components = features.get("grid", 2), features.get("components", 0)
            what = (f"{height}x{width} RGB images as patch features: {features['n_centroids']} k-means centroids "
                    f"of {side}x{side} patches, stride {features['stride']}, summed over a {grid}x{grid} grid"
                    + (f", projected on {components} principal axes" if components else ""))
            first = features.get("n_features", 4 * features["n_centroids"])
        else:
            what = f"{height}x{width} RGB pixels, {'standardized per channel' if features['standardize'] else 'in [0, 1]'}"
            first = f"{height}x{width}x3"
        return where, what, first


TEXT, IMAGES = Text(), Images()
MODALITIES = {modality.name: modality for modality in (TEXT, IMAGES)}


def named(name):
    """The modality a manifest's `kind` names."""
    if name not in MODALITIES:
        raise SemhashError(f"an index of {name!r}, which this semhash does not know; upgrade semhash")
    return MODALITIES[name]


# `semhash index --kind` names: what a path holds, as `sources.detect.detect_kind` tells it.
SOURCE_KINDS = {"text": "text", "lines": "lines", "images": "image-folder", "cifar-python": "cifar-python", "cifar-binary": "cifar-binary"}


def of_source_kind(kind):
    """The modality of what `sources.detect.detect_kind` found: "text", "image-folder", "cifar-..."."""
    for modality in MODALITIES.values():
        if kind in modality.source_kinds:
            return modality
    raise SemhashError(f"unknown kind of corpus {kind!r}")


def of_source(source):
    """The modality of a source object: a TextCorpus or a LineCorpus is text, any image reader images."""
    return TEXT if isinstance(source, (TextCorpus, LineCorpus)) else IMAGES
