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
"""


def test_kill_9_while_saving_never_loses_the_index(saved_annoy, tmp_path):  # noqa: F811
    saved = saved_annoy
    target = tmp_path / "index"
    shutil.copytree(saved.folder, target)
    expected = saved.query("football goal striker", k=5, exact=True)
    rng = np.random.default_rng(0)
    generations = set()
    for kill in range(20):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(saved.folder), str(target)],
                                  stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0, 0.25))  # one save takes about 50 ms here: kills land everywhere in it
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        opened = Index.open(target)  # checks the manifest, every file's size and the small files' sha256
        opened.verify()  # and every other file's
        assert opened.query("football goal striker", k=5, exact=True) == expected
        assert opened.search(opened.packed[0], 5, exact=False)[1].tolist() == opened.search(
            opened.packed[0], 5, exact=True)[1].tolist()
        generations.add(opened.manifest["generation"])
    assert len(generations) > 5  # the kills fell after some saves were published, and before others
    opened.save(target)  # the next writer removes what the killed ones left
    assert len([path for path in target.iterdir() if path.name.startswith("generation-")]) == 2
