"""The page at / in a real headless Chromium (Debian's `chromium`, driven by Playwright with the
system browser): type a query, read the result list, drop an image, read the grid, view an item
beside its reconstruction, open the map, hover over an item and click it.

Skipped, with the reason shown, where no Chromium is installed: `apt-get install chromium` (.ci/run
does it)."""

import base64
import os
import shutil

import pytest
from click.testing import CliRunner
from servers import serve_process
from test_cli_images import TINY_IMAGES, write_png_folder

from semhash.cli import cli

CHROMIUM = os.environ.get("SEMHASH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# The closed network's flags (no sandbox as root, nothing fetched in the background).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"no Chromium at {CHROMIUM}: apt-get install chromium to run the browser tests")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")

DROP = """([name, data]) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, {type: "image/png"}));
    return transfer;
}"""


@pytest.fixture(scope="module")
def served(built_index, tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    folder = write_png_folder(base / "photos")
    result = CliRunner().invoke(cli, ["index", str(folder), "-o", str(base / "photos-index"), "--size", "16",
                                      "--image-features", "pixels", "--hidden", "32", *TINY_IMAGES])
    assert result.exit_code == 0, result.output
    with serve_process(built_index, base / "photos-index") as url:
        yield url, folder


@pytest.fixture
def page(tmp_path):
    with playwright.sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1200, "height": 900})
        try:
            yield context.new_page()
        finally:
            context.close()


def test_search_drop_view_and_map_in_a_real_browser(served, page, tmp_path):
    url, folder = served
    shots = os.environ.get("SEMHASH_SCREENSHOTS")  # a folder to keep the screenshots in, to look at
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("#index option", state="attached")
    assert page.locator("#index option").all_inner_texts() == ["index", "photos-index"]

    page.fill("#query", "football goal striker coach")
    page.press("#query", "Enter")
    page.wait_for_selector("#results li")
    assert page.locator("#results li").count() == 12
    labels = page.locator("#results .label").all_inner_texts()
    assert labels[:5] == ["sports"] * 5
    assert "12 results" in page.inner_text("#status")
    if shots:
        page.screenshot(path=f"{shots}/text.png", full_page=True)

    page.locator("#results .more").first.click()  # more like this
    page.wait_for_function("document.querySelector('#status').textContent.includes('sports/')")
    assert page.locator("#results li").count() == 12

    page.select_option("#index", "photos-index")
    image = (folder / "green" / "01.png").read_bytes()
    transfer = page.evaluate_handle(DROP, ["01.png", base64.b64encode(image).decode()])
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#grid .tile")
    tiles = page.locator("#grid .tile")
    assert tiles.count() == 12
    assert tiles.first.locator(".label").inner_text() == "green" and tiles.first.locator(".distance").inner_text() == "d=0"
    page.wait_for_function("[...document.querySelectorAll('#grid img')].every((img) => img.complete && img.naturalWidth)")
    if shots:
        page.screenshot(path=f"{shots}/grid.png", full_page=True)

    tiles.first.get_by_text("rebuilt").click()
    page.wait_for_function("document.querySelector('#viewer-rebuilt').naturalWidth > 0")
    assert page.locator("#viewer").is_visible() and "green/01.png" in page.inner_text("#viewer-title")
    if shots:
        page.screenshot(path=f"{shots}/viewer.png")
    page.click("#viewer button")

    page.click("#tab-map")
    page.wait_for_function("document.querySelector('#map-caption').textContent.includes('36 of 36 items')")
    assert page.locator("#legend li").all_inner_texts() == ["blue", "green", "red"]
    x, y = page.evaluate("""() => { const p = state.placed[0], box = document.querySelector('#map').getBoundingClientRect(),
                                    canvas = document.querySelector('#map');
                                    return [box.left + p.px * box.width / canvas.width,
                                            box.top + p.py * box.height / canvas.height]; }""")
    first = page.evaluate("state.placed[0].id")
    page.mouse.move(x, y)
    page.wait_for_selector("#tip:not([hidden])")
    assert page.inner_text("#tip").count("/") >= 1
    if shots:
        page.screenshot(path=f"{shots}/map.png", full_page=True)
    page.mouse.click(x, y)  # searches with the item under the pointer
    # the grid of the dropped image is still shown while this search runs: wait for its answer
    page.wait_for_function(f"document.querySelector('#status').textContent.includes('results for {first}')")
    assert not page.locator("#panel-search").is_hidden() and page.locator("#grid .tile").count() == 12
    assert first not in [image.get_attribute("alt") for image in page.locator("#grid img").all()]  # like leaves it out
    assert errors == []
