"""kill -9 at random moments of writing an index over an earlier one: after every kill the folder
holds a whole index, the old or the new, which passes every check and answers queries."""

import shutil
import signal
import subprocess
import sys
import time

import numpy as np
from test_index import saved_annoy  # noqa: F401  (the module's built index, with Annoy's file stored)

from semhash import Index

WRITER = """
import sys
from semhash import Index
index = Index.open(sys.argv[1])
print("ready", flush=True)
while True:
    index.save(sys.argv[2])
    print("done", flush=True)
"""


def kill_in_a_write(writer, kill, rng, duration):
    """Kill -9 the writer process at a random moment of a write that lasts about `duration`
    seconds (measured under the machine's present load): on every other kill only after it has
    published one write, so that kills fall both between writes and inside them."""
    assert writer.stdout.readline() == "ready\n"
    if kill % 2 == 0:
        assert writer.stdout.readline() == "done\n"
    time.sleep(rng.uniform(0, 1.5 * duration))
    writer.send_signal(signal.SIGKILL)
    writer.wait()


def timed(action):
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def test_kill_9_while_saving_never_loses_the_index(saved_annoy, tmp_path):  # noqa: F811
    saved = saved_annoy
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    expected = saved.query("football goal striker", k=5, exact=True)
    rng = np.random.default_rng(0)
    generations = set()
    duration = timed(lambda: Index.open(saved.folder).save(tmp_path / "timed"))
    for kill in range(20):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(saved.folder), str(target)],
                                  stdout=subprocess.PIPE, text=True)
        kill_in_a_write(writer, kill, rng, duration)
        opened = Index.open(target)  # checks the manifest, every file's size and the small files' sha256
        opened.verify()  # and every other file's
        assert opened.query("football goal striker", k=5, exact=True) == expected
        assert opened.search(opened.packed[0], 5, exact=False)[1].tolist() == opened.search(
            opened.packed[0], 5, exact=True)[1].tolist()
        generations.add(opened.manifest["generation"])
    assert len(generations) > 5  # the kills fell after some saves were published, and before others
    opened.save(target)  # the next writer removes what the killed ones left
    assert len([path for path in target.iterdir() if path.name.startswith("generation-")]) == 2


UPDATER = """
import sys
from pathlib import Path
from semhash import Index, TextCorpus
corpus, target, first = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
for step in range(first, first + 1000):
    for old in (corpus / "sports").glob("new-*.txt"):
        old.unlink()
    (corpus / "sports" / f"new-{step}.txt").write_text("football goal striker coach " * (1 + step % 5))
    Index.open(target).update(TextCorpus(corpus))
    print("done", flush=True)
"""


def test_kill_9_during_updates_leaves_a_whole_index_and_readers_keep_answering(saved_annoy, tmp_path):  # noqa: F811
    """Updates (one document added and one removed each) killed at random moments, 20 times, while
    one reader opens the index for each query and another keeps it open throughout: every state
    after a kill is a whole index, old or new, and no query of either reader fails."""
    import json
    import threading

    from semhash import TextCorpus

    corpus = shutil.copytree(saved_annoy.manifest["source"]["root"], tmp_path / "corpus")
    target = shutil.copytree(saved_annoy.folder, tmp_path / "index")
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["source"]["root"] = str(corpus.resolve())
    (target / "manifest.json").write_text(json.dumps(manifest))
    Index.open(target).update(TextCorpus(corpus))  # nothing changed: nothing written
    (corpus / "sports" / "new-timed.txt").write_text("football goal striker coach")
    duration = timed(lambda: Index.open(target).update(TextCorpus(corpus)))  # one added: what an update costs
    kept_open = Index.open(target)
    failures, answered, stop = [], [0, 0], threading.Event()
    # This test's two threads open the index in turn: CPython 3.11.7's ast.literal_eval, which numpy
    # uses to parse a .npy header, raised "SystemError: AST constructor recursion depth mismatch"
    # when both parsed at once. The reader still opens the index while the writer process updates it.
    opening = threading.Lock()

    def read():
        while not stop.is_set():
            try:
                with opening:
                    fresh = Index.open(target)
                assert len(fresh.query("football goal striker", k=5)) == 5
                answered[0] += 1
                assert len(kept_open.query("football goal striker", k=5)) == 5
                answered[1] += 1
            except Exception as error:  # noqa: BLE001 (collected, and the test fails on any)
                failures.append(repr(error))

    reader = threading.Thread(target=read)
    reader.start()
    rng = np.random.default_rng(1)
    generations = set()
    try:
        for kill in range(20):
            writer = subprocess.Popen([sys.executable, "-c", UPDATER, str(corpus), str(target), str(kill * 1000)],
                                      stdout=subprocess.PIPE, text=True)
            kill_in_a_write(writer, kill, rng, duration)
            with opening:
                opened = Index.open(target)
            opened.verify()
            live = opened.live_rows()
            ids = [opened.records[row]["id"] for row in live]
            assert len(ids) == len(set(ids)) == opened.manifest["counts"]["documents"] in (72, 73)
            assert all(opened.records.row_of(item) == row for item, row in zip(ids, live))
            assert len(opened.query("football goal striker", k=100)) == len(ids)
            generations.add(opened.manifest["generation"])
    finally:
        stop.set()
        reader.join()
    assert failures == [] and min(answered) > 20
    assert len(generations) > 5  # kills fell after some updates were published, and before others
