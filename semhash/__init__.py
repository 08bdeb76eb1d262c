"""semhash: turn documents and images into short binary codes with a stacked autoencoder, search them
by Hamming distance.

`import semhash` is light: each public name below is imported from its module when first used, so
a program that needs the index alone never loads jieba, Pillow, scikit-learn or TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "CifarBinary": "sources.cifar", "CifarPython": "sources.cifar", "ConvStackedAutoencoder": "models.autoencoder",
    "Document": "sources.text", "ImageFolder": "sources.images", "Index": "index.index",
    "JiebaTokenizer": "features.tokenizer", "PatchFeatures": "features.patches", "PixelFeatures": "features.pixels",
    "SemhashError": "errors", "StackedAutoencoder": "models.autoencoder", "TextCorpus": "sources.text",
    "TextFeatures": "features.text", "open_images": "sources.detect",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'semhash' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *__all__])
