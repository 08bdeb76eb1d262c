"""semhash: turn documents and images into short binary codes with a stacked autoencoder, search them by Hamming distance."""

__version__ = "0.1.0"

from .corpus import Document, TextCorpus  # noqa: E402
from .errors import SemhashError  # noqa: E402
from .features import TextFeatures  # noqa: E402
from .images import CifarBinary, CifarPython, ImageFolder, open_images  # noqa: E402
from .index import Index  # noqa: E402
from .model import ConvStackedAutoencoder, StackedAutoencoder  # noqa: E402
from .patches import PatchFeatures  # noqa: E402
from .pixels import PixelFeatures  # noqa: E402
from .tokenizer import JiebaTokenizer  # noqa: E402

__all__ = [
    "CifarBinary", "CifarPython", "ConvStackedAutoencoder", "Document", "ImageFolder", "Index", "JiebaTokenizer",
    "PatchFeatures", "PixelFeatures", "SemhashError", "StackedAutoencoder", "TextCorpus", "TextFeatures", "open_images",
]
