"""semhash: turn documents and images into short binary codes with a stacked autoencoder, search them by Hamming distance."""

__version__ = "0.1.0"

from .errors import SemhashError  # noqa: E402
from .features.patches import PatchFeatures  # noqa: E402
from .features.pixels import PixelFeatures  # noqa: E402
from .features.text import TextFeatures  # noqa: E402
from .features.tokenizer import JiebaTokenizer  # noqa: E402
from .index.index import Index  # noqa: E402
from .models.autoencoder import ConvStackedAutoencoder, StackedAutoencoder  # noqa: E402
from .sources.cifar import CifarBinary, CifarPython  # noqa: E402
from .sources.detect import open_images  # noqa: E402
from .sources.images import ImageFolder  # noqa: E402
from .sources.text import Document, TextCorpus  # noqa: E402

__all__ = [
    "CifarBinary", "CifarPython", "ConvStackedAutoencoder", "Document", "ImageFolder", "Index", "JiebaTokenizer",
    "PatchFeatures", "PixelFeatures", "SemhashError", "StackedAutoencoder", "TextCorpus", "TextFeatures", "open_images",
]
