"""`semhash serve`: every endpoint through FastAPI's test client, bad input, concurrency, and a
server started for real that follows an update or a rebuild of its index without a failed request."""

import concurrent.futures
import io
import threading
from urllib.parse import quote

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_CLI, json_lines, write_corpus
from fastapi.testclient import TestClient
from PIL import Image
from servers import get, serve_process, threaded_server
from test_cli_images import TINY_IMAGES, write_png_folder

from semhash.cli import cli
from semhash.server import create_app


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """An image folder and its index read as pixels (so it keeps its decoder)."""
    base = tmp_path_factory.mktemp("served")
    folder = write_png_folder(base / "photos")
    result = CliRunner().invoke(cli, ["index", str(folder), "-o", str(base / "photos-index"), "--size", "16",
                                      "--image-features", "pixels", "--hidden", "32", *TINY_IMAGES])
    assert result.exit_code == 0, result.output
    return folder, base / "photos-index"


@pytest.fixture(scope="module")
def client(built_index, photos):
    return TestClient(create_app([built_index, photos[1]]), raise_server_exceptions=False)


def png_bytes(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_indexes_lists_each_manifest_and_its_bit_balance(client):
    text, images = client.get("/indexes").json()
    assert (text["name"], text["kind"], text["items"], text["bits"]) == ("index", "text", 72, 16)
    assert len(text["bit_balance"]) == 16 and all(0 <= share <= 1 for share in text["bit_balance"])
    assert "files" not in text and text["model"]["bits"] == 16
    assert (images["name"], images["kind"], images["items"]) == ("photos-index", "images", 36)
    assert images["reconstruction"] is True and text["reconstruction"] is False


def test_a_text_search_gives_what_semhash_query_gives(client, built_index):
    answer = client.get("/search", params={"q": "football goal striker", "k": 5})
    assert answer.status_code == 200
    body = answer.json()
    cli_hits = json_lines(CliRunner().invoke(cli, ["query", "football goal striker", "--index", str(built_index),
                                                   "-k", "5"]).stdout)
    assert body["index"] == "index" and body["hits"] == cli_hits
    assert set(body["hits"][0]) == {"id", "path", "label", "distance", "score", "snippet"}
    posted = client.post("/search", data={"q": "football goal striker", "k": "5"}).json()
    assert posted["hits"] == cli_hits


def test_like_and_radius(client, built_index):
    like = client.get("/search", params={"like": "sports/en-00.txt", "k": 3}).json()["hits"]
    assert len(like) == 3 and "sports/en-00.txt" not in [hit["id"] for hit in like]
    within = client.get("/search", params={"q": "football goal", "radius": 2, "k": 1000}).json()["hits"]
    assert all(hit["distance"] <= 2 for hit in within)
    cli_within = json_lines(CliRunner().invoke(cli, ["query", "football goal", "--index", str(built_index),
                                                     "--radius", "2", "-k", "1000"]).stdout)
    assert within == cli_within


def test_an_uploaded_image_finds_itself_first(client, photos):
    folder, _ = photos
    image = (folder / "green" / "01.png").read_bytes()
    answer = client.post("/search", data={"index": "photos-index", "k": "5"},
                         files={"image": ("01.png", image, "image/png")})
    assert answer.status_code == 200, answer.text
    hits = answer.json()["hits"]
    assert hits[0]["id"] == "green/01.png" and hits[0]["distance"] == 0
    assert set(hits[0]) == {"id", "label", "distance", "score", "source"}


def test_items_give_the_record_the_picture_and_the_reconstruction(client, photos):
    record = client.get("/items/sports/en-00.txt").json()
    assert record["id"] == "sports/en-00.txt" and record["label"] == "sports" and "snippet" in record
    picture = client.get("/items/green/01.png", params={"index": "photos-index", "format": "png", "size": 32})
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(picture.content)) as drawn:
        assert drawn.size == (32, 32)
        original = np.asarray(Image.open(photos[0] / "green" / "01.png").convert("RGB").resize((32, 32)))
        assert np.abs(np.asarray(drawn, dtype=int) - original).mean() < 20
    rebuilt = client.get("/items/green/01.png", params={"index": "photos-index", "format": "reconstruction"})
    assert rebuilt.status_code == 200
    with Image.open(io.BytesIO(rebuilt.content)) as drawn:
        assert drawn.size == (16, 16)
        pixels = np.asarray(drawn, dtype=float)
    assert pixels[..., 1].mean() > pixels[..., 0].mean()  # a green square's image is rebuilt greener than red
    document = client.get("/items/sports/en-00.txt", params={"format": "png"})
    assert document.status_code == 400 and "is a document" in document.json()["error"]


def test_an_index_of_patch_features_says_it_cannot_rebuild(tmp_path, photos):
    folder, _ = photos
    index = tmp_path / "patches"
    result = CliRunner().invoke(cli, ["index", str(folder), "-o", str(index), "--size", "16", "--centroids", "8",
                                      "--hidden", "16", *TINY_IMAGES])
    assert result.exit_code == 0, result.output
    client = TestClient(create_app([index]))
    assert client.get("/indexes").json()[0]["reconstruction"] is False
    answer = client.get("/items/red/00.png", params={"format": "reconstruction"})
    assert answer.status_code == 404 and "keeps no decoder" in answer.json()["error"]


def test_the_map_as_points_and_as_a_png(client):
    points = client.get("/map").json()
    assert points["shown"] == points["items"] == 72 and points["method"] == "pca"
    assert set(points["colours"]) == {"sports", "finance", "cooking"}
    assert {"id", "label", "x", "y"} == set(points["points"][0])
    drawn = client.get("/map", params={"index": "photos-index", "format": "png"})
    assert drawn.status_code == 200 and drawn.content.startswith(b"\x89PNG")
    clearer = client.get("/map", params={"projection": "tsne"}).json()
    assert clearer["method"] == "tsne" and clearer["explained"] is None and len(clearer["points"]) == 72
    assert client.get("/map").json() == points  # each projection kept apart


def test_the_page_and_the_openapi_description(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>semhash</title>" in page.text
    assert client.get("/static/app.js").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/indexes", "/search", "/items/{item_id}", "/map"} <= set(paths)


@pytest.mark.parametrize("request_args, status, message", [
    (("get", "/search", {"params": {"q": "   "}}), 400, "the query text is empty; give some words to search for"),
    (("get", "/search", {"params": {}}), 400, "give exactly one of q (a text), image (an uploaded file) or like"),
    (("get", "/search", {"params": {"q": "qwertyuiop"}}), 400,
     "none of the query's words are in the index's vocabulary; try other words"),
    (("get", "/search", {"params": {"like": "nowhere.txt"}}), 404, "no item 'nowhere.txt' in"),
    (("get", "/items/nowhere.txt", {}), 404, "no item 'nowhere.txt' in"),
    (("get", "/search", {"params": {"q": "goal", "k": 0}}), 422, "k: Input should be greater than or equal to 1"),
    (("get", "/search", {"params": {"q": "goal", "index": "other"}}), 404, "no index 'other' is served here"),
    (("post", "/search", {"data": {"index": "photos-index"}, "files": {"image": ("notes.txt", b"not an image")}}),
     400, 'cannot read the uploaded file "notes.txt": not a readable image'),
    (("post", "/search", {"files": {"image": ("a.png", b"")}}), 400, "this index holds documents; query it with"),
    (("get", "/map", {"params": {"format": "svg"}}), 400, "unknown format 'svg'; choose json or png"),
    (("get", "/map", {"params": {"projection": "umap"}}), 400, "unknown projection 'umap'; choose pca or tsne"),
])
def test_bad_input_gets_a_4xx_with_the_command_lines_message(client, request_args, status, message):
    method, path, kwargs = request_args
    answer = getattr(client, method)(path, **kwargs)
    assert answer.status_code == status and message in answer.json()["error"], answer.text
    assert "Traceback" not in answer.text and "\n" not in answer.json()["error"]


def test_a_huge_upload_is_refused_with_413_before_it_is_read(built_index, photos):
    client = TestClient(create_app([photos[1]], max_upload_bytes=1000))
    image = png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    answer = client.post("/search", files={"image": ("big.png", image, "image/png")})
    assert answer.status_code == 413 and "over the limit of 1,000 bytes" in answer.json()["error"]

    def chunks():  # no Content-Length: refused as the bytes pass the limit
        yield from (image[start:start + 500] for start in range(0, len(image), 500))

    boundary = b"b0undary"
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n\r\n'
            + image + b"\r\n--" + boundary + b"--\r\n")
    streamed = client.post("/search", content=(body[i:i + 500] for i in range(0, len(body), 500)),
                           headers={"content-type": f"multipart/form-data; boundary={boundary.decode()}"})
    assert streamed.status_code == 413 and "over the limit" in streamed.json()["error"]


def test_an_unexpected_error_is_a_500_without_a_traceback(client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("semhash.index.index.Index.query", broken)
    answer = client.get("/search", params={"q": "football"})
    assert answer.status_code == 500
    assert answer.json() == {"error": "unexpected RuntimeError; the server's log says where"}


def test_concurrent_requests_to_a_real_server_all_answer_alike(built_index, photos):
    app = create_app([built_index, photos[1]])
    queries = ["football goal striker", "bank interest rates", "recipe kitchen flour", "股票 银行 利率"]
    with threaded_server(app) as url:
        expected = {q: get(f"{url}/search?q={quote(q)}&k=5")[1]["hits"] for q in queries}

        def ask(n):
            q = queries[n % len(queries)]
            status, body = get(f"{url}/search?q={quote(q)}&k=5")
            return status == 200 and body["hits"] == expected[q]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert all(pool.map(ask, range(200)))


@pytest.mark.parametrize("how", [[], ["--retrain"]], ids=["update", "rebuild"])
def test_the_server_follows_an_update_or_a_rebuild_without_a_failed_request(tmp_path, how):
    corpus = write_corpus(tmp_path / "corpus", per_topic=8)
    index = tmp_path / "index"
    assert CliRunner().invoke(cli, ["index", str(corpus), "-o", str(index), *TINY_CLI]).exit_code == 0
    app = create_app([index])
    live = app.state.indexes["index"]
    failures, answered, stop = [], [], threading.Event()
    with threaded_server(app) as url:
        def loop():
            while not stop.is_set():
                status, body = get(f"{url}/search?q=football%20goal&k=3")
                (answered if status == 200 else failures).append(body)

        thread = threading.Thread(target=loop)
        thread.start()
        try:
            write_corpus(tmp_path / "more", per_topic=12, seed=5)
            for topic in ("sports", "finance", "cooking"):
                for path in (tmp_path / "more" / topic).iterdir():
                    path.rename(corpus / topic / f"more-{path.name}")
            rebuilt = CliRunner().invoke(cli, ["index", str(corpus), "-o", str(index), *TINY_CLI, *how])
            assert rebuilt.exit_code == 0, rebuilt.output
            assert ("updated" in json_lines(rebuilt.stdout)[0]) == (how == [])
            for _ in range(300):  # the new index opens in the background while the old one answers
                if get(f"{url}/indexes")[1][0]["items"] == 60:
                    break
                threading.Event().wait(0.05)
            before = len(answered)
            while len(answered) < before + 20:
                threading.Event().wait(0.01)
        finally:
            stop.set()
            thread.join(timeout=30)
    assert failures == [] and len(answered) > 20
    assert live.reopened == 1 and get_items(app) == 60


def get_items(app):
    return len(app.state.indexes["index"].current())


def test_semhash_serve_runs_as_a_process_and_stops(built_index):
    with serve_process(built_index) as url:
        status, body = get(f"{url}/search?q=football&k=2")
        assert status == 200 and len(body["hits"]) == 2
