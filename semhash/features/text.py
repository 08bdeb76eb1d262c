"""Bag-of-words features: jieba terms counted into sparse CSR rows, then weighted.

Fitting uses scikit-learn's CountVectorizer for the vocabulary (min_df, max_df,
max_features). Transforming new text needs only the fitted vocabulary, so a query
never imports scikit-learn.
"""

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import SemhashError
from .tokenizer import JiebaTokenizer, Lexicon

WEIGHTINGS = ("log1p", "tfidf", "binary", "counts")
NORMS = ("l2", None)
VOCABULARY_FILE = "vocabulary.txt"
LEXICON_FILE = "lexicon.npz"


def inverse_document_frequency(document_frequency, n_documents):
    """Smoothed idf, as scikit-learn's TfidfTransformer: log((1 + n) / (1 + df)) + 1, float32."""
    return np.log((1 + n_documents) / (1 + np.asarray(document_frequency))).astype(np.float32) + 1


class TextFeatures:
    """Turns texts into weighted bag-of-words rows (CSR, float32).

    weighting: "tfidf" (1 + log count, times idf), "log1p" (log(1 + count)), "binary"
    or "counts". (Measured on 20 Newsgroups at 64 bits, with max_features 20000: tfidf
    .625 precision@100, log1p .596; see docs/RESULTS.md.)
    norm: "l2" scales each row to length `scale`, so a short query and a long document of
    the same topic reach the network alike (measured: without it, short queries on the
    bundled corpus retrieve at chance); None leaves rows as weighted.
    Fitted attributes: `vocabulary_` (term to column), `terms_`, `document_frequency_`,
    `n_documents_`.
    """

    kind = "text"

    def __init__(self, tokenizer=None, max_features=20000, min_df=2, max_df=0.5, weighting="tfidf",
                 norm="l2", scale=10.0):
        self.tokenizer = tokenizer
        self.max_features = max_features
        self.min_df = min_df
        self.max_df = max_df
        self.weighting = weighting
        self.norm = norm
        self.scale = scale

    def _tokenizer(self):
        if self.tokenizer is None:
            self.tokenizer = JiebaTokenizer()
        return self.tokenizer

    def fit(self, texts):
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts):
        """Learn the vocabulary from an iterable of texts (read once) and weigh their counts."""
        from sklearn.feature_extraction.text import CountVectorizer

        if self.weighting not in WEIGHTINGS:
            raise SemhashError(f"unknown weighting {self.weighting!r}; choose from {', '.join(WEIGHTINGS)}")
        if self.norm not in NORMS:
            raise SemhashError(f"unknown norm {self.norm!r}; choose l2 or None")
        vectorizer = CountVectorizer(
            tokenizer=self._tokenizer(),
            lowercase=False,
            token_pattern=None,
            min_df=self.min_df,
            max_df=self.max_df,
            max_features=self.max_features,
            dtype=np.float32,
        )
        try:
            counts = vectorizer.fit_transform(texts)
        except ValueError as error:
            message = str(error)
            if "empty vocabulary" in message or "no terms remain" in message:
                raise SemhashError(
                    "no terms left after tokenizing and pruning the vocabulary; "
                    "add documents or lower --min-df / raise --max-df"
                ) from None
            if "max_df corresponds to" in message:
                raise SemhashError(
                    "--max-df keeps fewer documents than --min-df asks for; "
                    "raise --max-df or lower --min-df"
                ) from None
            raise
        self.terms_ = list(vectorizer.get_feature_names_out())
        self.vocabulary_ = {term: column for column, term in enumerate(self.terms_)}
        self.n_documents_ = counts.shape[0]
        self.document_frequency_ = np.bincount(counts.indices, minlength=len(self.terms_))
        return self.weigh(sp.csr_matrix(counts))

    def counts(self, texts, tally=None):
        """Term counts of `texts` over the fitted vocabulary, as CSR. `tally`, a dict where given,
        gains the number of terms the texts held ("terms") and of those outside the vocabulary
        ("unknown_terms"): how far new texts have drifted from those the vocabulary was fitted on."""
        tokenizer = self._tokenizer()
        indptr, indices = [0], []
        terms = 0
        for text in texts:
            tokens = tokenizer(text)
            terms += len(tokens)
            indices.extend(self.vocabulary_[t] for t in tokens if t in self.vocabulary_)
            indptr.append(len(indices))
        if tally is not None:
            tally["terms"] = tally.get("terms", 0) + terms
            tally["unknown_terms"] = tally.get("unknown_terms", 0) + terms - len(indices)
        data = np.ones(len(indices), dtype=np.float32)
        matrix = sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, len(self.terms_)))
        matrix.sum_duplicates()
        return matrix

    def transform(self, texts):
        return self.weigh(self.counts(texts))

    def idf(self):
        """Smoothed inverse document frequency of each term."""
        return inverse_document_frequency(self.document_frequency_, self.n_documents_)

    def weigh(self, counts):
        """Weight a CSR matrix of counts, then scale its rows (a new matrix)."""
        weighted = counts.astype(np.float32, copy=True)
        if self.weighting == "log1p":
            np.log1p(weighted.data, out=weighted.data)
        elif self.weighting == "binary":
            weighted.data[:] = 1
        elif self.weighting == "tfidf":
            weighted.data = (1 + np.log(weighted.data)) * self.idf()[weighted.indices]
        if self.norm == "l2":
            lengths = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
            lengths[lengths == 0] = 1
            weighted = sp.csr_matrix(sp.diags(self.scale / lengths) @ weighted, dtype=np.float32)
        return weighted

    def get_params(self):
        return {
            "max_features": self.max_features,
            "min_df": self.min_df,
            "max_df": self.max_df,
            "weighting": self.weighting,
            "norm": self.norm,
            "scale": self.scale,
        }

    def save(self, folder):
        """Write the vocabulary (term and document frequency a line) and the lexicon."""
        folder = Path(folder)
        lines = (f"{term}\t{df}\n" for term, df in zip(self.terms_, self.document_frequency_))
        (folder / VOCABULARY_FILE).write_text("".join(lines), encoding="utf-8")
        self._tokenizer().lexicon().save(folder / LEXICON_FILE)
        return {
            **self.get_params(),
            "tokenizer": self._tokenizer().get_params(),
            "vocabulary_size": len(self.terms_),
            "n_documents": self.n_documents_,
        }

    @classmethod
    def load(cls, folder, settings):
        """Rebuild fitted features from `save`'s folder and the settings it returned."""
        folder = Path(folder)
        tokenizer_params = settings["tokenizer"]
        tokenizer = JiebaTokenizer(**tokenizer_params).use_lexicon(Lexicon.load(folder / LEXICON_FILE))
        features = cls(tokenizer, **{key: settings[key] for key in ("max_features", "min_df", "max_df", "weighting", "norm", "scale")})
        terms, frequencies = [], []
        for line in (folder / VOCABULARY_FILE).read_text(encoding="utf-8").splitlines():
            term, df = line.rsplit("\t", 1)
            terms.append(term)
            frequencies.append(int(df))
        if len(terms) != settings["vocabulary_size"]:
            raise SemhashError(
                f"{folder / VOCABULARY_FILE} has {len(terms)} terms where the manifest says "
                f"{settings['vocabulary_size']}; rebuild the index with `semhash index`"
            )
        features.terms_ = terms
        features.vocabulary_ = {term: column for column, term in enumerate(terms)}
        features.document_frequency_ = np.array(frequencies, dtype=np.int64)
        features.n_documents_ = settings["n_documents"]
        return features
