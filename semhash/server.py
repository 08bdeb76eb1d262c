"""`semhash serve`: an HTTP API and a page to search and browse indexes, following their rebuilds.

FastAPI over uvicorn (the optional `serve` extra). Each index is opened once; at every request its
manifest's inode and modification time are looked at (one stat), and when `semhash index` has
published a new generation, the index is opened again in a background thread while the one already
open goes on answering, so no request fails across a rebuild. Bad input gets a 4xx whose body is
{"error": the one-line message the command line gives}; an unexpected error a 500 with no traceback
(the traceback goes to the server's log).
"""

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from . import __version__
from .codemap import CodeMap
from .defaults import MAP_PROJECTIONS
from .errors import SemhashError, UsageProblem
from .index.index import Index
from .index.store import MANIFEST
from .modality import MAX_QUERY_BYTES, check_query_size

STATIC = Path(__file__).parent / "static"
# A request body over this is refused with 413 before it is read further: room for a large photo,
# whose pixels are then bounded by the image readers' MAX_IMAGE_PIXELS, as a query image's are on the
# command line (see `sources.images`).
MAX_UPLOAD_BYTES = 32 << 20
MAX_K = 1000  # the most results one search returns
PICTURE_SIDES = (8, 512)  # the smallest and largest side a picture of an item is drawn at
log = logging.getLogger("semhash.server")


class LiveIndex:
    """An index folder, opened, and opened again when its manifest is replaced (see the module's
    docstring). `current()` is what a request asks with; the map is made once per opened index."""

    def __init__(self, folder, name):
        self.folder, self.name = Path(folder), name
        self._stamp = self._stamped()
        self.index = Index.open(self.folder)
        self.lock = threading.Lock()  # one search at a time on an index: its tokenizer is not thread-safe
        self._reopening = threading.Lock()
        self._map = None
        self.reopened = 0

    def _stamped(self):
        status = os.stat(self.folder / MANIFEST)
        return status.st_ino, status.st_mtime_ns, status.st_size

    def current(self):
        """The newest index open: a changed manifest starts opening the new one in a background
        thread (unless one is opening already), and until it is open the old one answers."""
        try:
            stamp = self._stamped()
        except OSError:  # the manifest is being replaced this instant: the open index answers
            return self.index
        if stamp != self._stamp and self._reopening.acquire(blocking=False):
            threading.Thread(target=self._reopen, args=(stamp,), daemon=True).start()
        return self.index

    def _reopen(self, stamp):
        try:
            opened = Index.open(self.folder)
        except SemhashError as error:  # a damaged new generation: keep answering with the old one
            log.warning("semhash: %s; still answering with the index opened before", error)
            opened = None
        except Exception:
            log.exception("semhash: reopening %s failed; still answering with the index opened before", self.folder)
            opened = None
        finally:
            if opened is not None:
                self.index, self._map, self._stamp = opened, None, stamp
                self.reopened += 1
            self._reopening.release()

    def code_map(self, projection="pca"):
        """The index's 2-D map by `projection` (see `codemap`), made on first use and kept until the
        index changes."""
        index = self.current()
        maps = self._map if self._map is not None and self._map[0] is index else (index, {})
        if projection not in maps[1]:
            with self.lock:
                maps[1][projection] = CodeMap(projection=projection).fit(index)
            self._map = maps
        return index, maps[1][projection]

    def summary(self):
        """The manifest, less its list of files, with the bit balance and what the page may show."""
        index = self.current()
        manifest = {key: value for key, value in index.manifest.items() if key not in ("files", "training")}
        return {"name": self.name, "folder": str(self.folder), "items": len(index), **manifest,
                "bit_balance": [round(float(share), 4) for share in index.bit_balance()],
                "reconstruction": can_reconstruct(index)}


def can_reconstruct(index):
    """Whether `index` can show its images rebuilt: a model that kept its decoder, over pixels."""
    return index.model.can_reconstruct and hasattr(index.features, "inverse_transform")


def index_names(folders):
    """{name: folder}: each index by its folder's name, or a UsageProblem if two share one."""
    names = {}
    for folder in folders:
        name = Path(folder).resolve().name
        if name in names:
            raise UsageProblem(f"two indexes are named {name!r} ({names[name]} and {folder}); "
                               "serve indexes whose folders have different names")
        names[name] = Path(folder)
    return names


def _error(status, message):
    return JSONResponse({"error": message}, status_code=status)


class UploadLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413, by its Content-Length before
    anything is read, or as soon as the bytes read pass it (a chunked upload)."""

    def __init__(self, app, limit):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._too_large(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # FastAPI passes an HTTPException on from reading the body
                raise HTTPException(413, self._message())
            return message

        return await self.app(scope, counted, send)

    def _message(self):
        return f"the request is over the limit of {self.limit:,} bytes; send a smaller image or query"

    async def _too_large(self, scope, receive, send):
        await _error(413, self._message())(scope, receive, send)


def create_app(folders, max_upload_bytes=MAX_UPLOAD_BYTES):
    """The ASGI application serving the indexes in `folders` (the first answers requests naming none)."""
    indexes = {name: LiveIndex(folder, name) for name, folder in index_names(folders).items()}
    if not indexes:
        raise UsageProblem("give at least one index to serve")
    app = FastAPI(title="semhash", version=__version__, description=(
        "Search indexes of documents or images by meaning: binary codes learned by a stacked "
        "autoencoder, ranked by Hamming distance. Errors are {\"error\": one line}."))
    app.state.indexes = indexes
    app.add_middleware(UploadLimit, limit=max_upload_bytes)

    @app.exception_handler(SemhashError)
    async def semhash_error(request, error):
        return _error(404 if str(error).startswith("no item ") else 400, str(error))

    @app.exception_handler(HTTPException)
    async def http_error(request, error):
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, error):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if part not in ("query", "body"))
        return _error(422, f"{where}: {first['msg']}" if where else first["msg"])

    @app.exception_handler(Exception)
    async def unexpected(request, error):
        log.error("semhash: unexpected error answering %s", request.url.path, exc_info=error)
        return _error(500, f"unexpected {type(error).__name__}; the server's log says where")

    def chosen(name):
        if name is None:
            return next(iter(indexes.values()))
        if name not in indexes:
            raise HTTPException(404, f"no index {name!r} is served here; choose from {', '.join(indexes)}")
        return indexes[name]

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/indexes", summary="Every index served: its manifest (less the file list) and bit balance")
    def list_indexes():
        return [live.summary() for live in indexes.values()]

    def search(live, text, image, like, k, radius):
        given = [name for name, value in (("q", text), ("image", image), ("like", like)) if value is not None]
        if len(given) != 1:
            raise UsageProblem("give exactly one of q (a text), image (an uploaded file) or like (an item's id)")
        if text is not None:
            check_query_size(text, MAX_QUERY_BYTES, "the server's limit")
            if not text.strip():
                raise UsageProblem("the query text is empty; give some words to search for")
        index = live.current()
        started = time.perf_counter()
        with live.lock:
            item = None if like is not None else index.modality.query_item(
                text=text, image=image, features=index.features)
            if radius is not None:
                hits = (index.within(item, radius) if like is None else index.within_like(like, radius))[:k]
            elif like is None:
                hits = index.query(item, k)
            else:
                hits = index.like(like, k)
        return {"index": live.name, "kind": index.manifest["kind"], "hits": hits,
                "milliseconds": round(1000 * (time.perf_counter() - started), 3)}

    K = Annotated[int, Query(ge=1, le=MAX_K, description="How many results (with radius: the most shown)")]
    RADIUS = Annotated[int | None, Query(ge=0, description="Every item within this many bits instead")]

    @app.get("/search", summary="Search by a text (q) or an indexed item (like); the hits as `semhash query` gives them")
    def search_get(q: str | None = None, like: str | None = None, k: K = 10, radius: RADIUS = None,
                   index: str | None = None):
        return search(chosen(index), q, None, like, k, radius)

    @app.post("/search", summary="Search by an uploaded image (a multipart form), a text or an indexed item")
    def search_post(q: Annotated[str | None, Form()] = None, like: Annotated[str | None, Form()] = None,
                    k: Annotated[int, Form(ge=1, le=MAX_K)] = 10, radius: Annotated[int | None, Form(ge=0)] = None,
                    index: Annotated[str | None, Form()] = None, image: Annotated[UploadFile | None, File()] = None):
        live = chosen(index)
        if image is None:
            return search(live, q, None, like, k, radius)
        with uploaded(image) as path:
            return search(live, q, str(path), like, k, radius)

    @app.get("/items/{item_id:path}", summary="An item's record; format=png: an image's picture, read from its "
                                                "source; format=reconstruction: its rebuilding by the autoencoder")
    def item(item_id: str, index: str | None = None, format: str = "json",
             size: Annotated[int, Query(ge=PICTURE_SIDES[0], le=PICTURE_SIDES[1])] = 128):
        live = chosen(index)
        opened = live.current()
        record = opened.record(item_id)
        if format == "json":
            return {"index": live.name, **record}
        if format not in ("png", "reconstruction"):
            raise HTTPException(400, f"unknown format {format!r}; choose json, png or reconstruction")
        if "source" not in record:
            raise HTTPException(400, f"{item_id} is a document, which has no picture; ask for its record (format=json)")
        from .sources.originals import read_sources

        if format == "png":
            return png(read_sources([record["source"]], (size, size))[0])
        if not can_reconstruct(opened):
            raise HTTPException(404, f"{live.name} keeps no decoder for pixels, so it cannot rebuild images: an index "
                                     "of patch features, or one built before decoders were kept; rebuild it with "
                                     "--image-features pixels or --arch conv to see reconstructions")
        pixels = read_sources([record["source"]], tuple(opened.features.size))[0]
        with live.lock:
            rebuilt = opened.features.inverse_transform(
                opened.model.reconstruct(opened.features.transform(pixels[None])))[0]
        return png(rebuilt)

    @app.get("/map", summary="The 2-D map of the codes (PCA of a sample of the bits, or t-SNE: clearer, and "
                             "seconds to make on first request), as JSON points or a PNG")
    def code_map(index: str | None = None, format: str = "json", projection: str = "pca"):
        live = chosen(index)
        if projection not in MAP_PROJECTIONS:
            raise HTTPException(400, f"unknown projection {projection!r}; choose {' or '.join(MAP_PROJECTIONS)}")
        opened, drawn = live.code_map(projection)
        if format == "json":
            return {"index": live.name, **drawn.to_json(len(opened))}
        if format == "png":
            title = f"{live.name}: {len(drawn.ids_):,} of {len(opened):,} {opened.modality.items}"
            return Response(drawn.png(title), media_type="image/png")
        raise HTTPException(400, f"unknown format {format!r}; choose json or png")

    return app


def png(pixels):
    """A PNG response of uint8 pixels."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return Response(buffer.getvalue(), media_type="image/png")


@contextlib.contextmanager
def uploaded(upload):
    """The path of a temporary copy of an uploaded file while a query reads it; read errors name the
    upload by its file name instead of the temporary path."""
    with tempfile.NamedTemporaryFile(prefix="semhash-upload-", suffix=".img") as file:
        upload.file.seek(0)
        shutil.copyfileobj(upload.file, file)
        file.flush()
        try:
            yield Path(file.name)
        except SemhashError as error:
            name = f"the uploaded file {json.dumps(upload.filename or 'image', ensure_ascii=False)}"
            raise type(error)(str(error).replace(file.name, name)) from None


def serve(folders, host="127.0.0.1", port=8000, quiet=False, max_upload_bytes=MAX_UPLOAD_BYTES):
    """Serve `folders` with uvicorn until interrupted."""
    import uvicorn

    app = create_app(folders, max_upload_bytes)
    uvicorn.run(app, host=host, port=port, log_level="warning" if quiet else "info", access_log=not quiet)
