"""Line corpora indexed a partition at a time: on a training sample, in one process and on a real
local Dask cluster (the same codes, byte for byte, even when a worker is killed), and by the CLI."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_CLI, TINY_MODEL, TOPICS, json_lines, topic_text

from semhash import defaults
from semhash.cli import cli
from semhash.features.text import TextFeatures
from semhash.index import encoding
from semhash.index.cluster import Cluster
from semhash.index.index import Index, chosen_backend
from semhash.index.shards import Shard, shard_name
from semhash.sources.lines import LineCorpus

ROWS = 300


def write_lines(path, rows=ROWS, seed=0):
    """A JSON Lines corpus of topic documents, labelled, with one bad row."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as file:
        for i in range(rows):
            topic = list(TOPICS)[i % len(TOPICS)]
            text = topic_text(rng, topic, "en" if i % 2 == 0 else "zh")
            file.write(json.dumps({"text": text, "label": topic}, ensure_ascii=False) + "\n")
            if i == 10:
                file.write("{not json\n")
    return path


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    return write_lines(tmp_path_factory.mktemp("lines") / "corpus.jsonl")


def build(corpus_file, output, cluster=None, train_sample=120):
    return encoding.build(LineCorpus(corpus_file), output, TextFeatures(min_df=1), defaults.model("text", **TINY_MODEL),
                          train_sample=train_sample, partition_rows=40, cluster=cluster)


@pytest.fixture(scope="module")
def single(corpus_file, tmp_path_factory):
    return build(corpus_file, tmp_path_factory.mktemp("single") / "index")


def test_trained_on_a_sample_every_row_is_encoded(single):
    manifest = single.manifest
    assert manifest["training"]["sample"] == 120 and manifest["training"]["rows"] == ROWS + 1
    assert len(single) == ROWS and manifest["counts"]["skipped"] == {"not JSON": 1}
    assert single.features.n_documents_ == 120  # the feature statistics are the sample's
    assert single.record("corpus.jsonl:13")["row"] == 13  # the line after the bad one
    labels = [hit["label"] for hit in single.query("football match goal striker", k=20)]
    assert labels.count("sports") >= 15


def test_two_workers_give_the_same_codes_and_records_byte_for_byte(corpus_file, single, tmp_path):
    with Cluster(workers=2) as cluster:
        distributed = build(corpus_file, tmp_path / "index", cluster)
        assert len(cluster.worker_peaks) == 2
    assert np.asarray(distributed.packed).tobytes() == np.asarray(single.packed).tobytes()
    assert list(distributed.records) == list(single.records)


def shards_written(folder, results, n_bits):
    """The codes and records of the shards that `results` say were written to `folder`."""
    shards = [Shard.open(folder / shard_name(result.number), result.entry, n_bits) for result in results]
    return np.concatenate([shard.packed for shard in shards]).tobytes(), [list(shard.records) for shard in shards]


def test_a_killed_worker_loses_and_repeats_no_partition(corpus_file, single, tmp_path):
    source = LineCorpus(corpus_file)
    partitions = source.partitions(20)
    encoder = encoding.Encoder(single.features, single.model)
    backend = chosen_backend(ROWS)
    (tmp_path / "here").mkdir()
    (tmp_path / "there").mkdir()
    expected = list(encoding.encoded_here(source, partitions, encoding.PartitionJob(encoder, backend, tmp_path / "here",
                                                                                    single.bits)))
    with Cluster(workers=2) as cluster:
        pids = cluster.client.run(os.getpid)
        results = cluster.encode(source, partitions, encoding.PartitionJob(encoder, backend, tmp_path / "there",
                                                                           single.bits))
        found = [next(results)]
        os.kill(next(iter(pids.values())), signal.SIGKILL)  # the shards it wrote stay; what it held is lost
        found.extend(results)
        assert set(cluster.client.run(os.getpid).values()) != set(pids.values())  # the nanny started another
    assert [result.number for result in found] == [partition.number for partition in partitions]
    assert shards_written(tmp_path / "there", found, single.bits) == shards_written(tmp_path / "here", expected,
                                                                                       single.bits)
    assert sorted(path.name for path in (tmp_path / "there").iterdir()) == [shard_name(p.number) for p in partitions]


def test_cli_indexes_a_line_corpus_without_importing_dask(corpus_file, tmp_path):
    output = tmp_path / "index"
    script = ("import sys; from semhash.cli import cli; "
              f"cli(['index', {str(corpus_file)!r}, '-o', {str(output)!r}, '--train-sample', '100', *{TINY_CLI!r}], "
              "standalone_mode=False); print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    row, imported = json_lines(done.stdout.splitlines()[0]), done.stdout.splitlines()[1]
    assert imported == "[]"
    assert row[0]["documents"] == ROWS and row[0]["skipped"] == {"not JSON": 1}
    hits = Index.open(output).query("股票 银行 利率", k=5)
    assert [hit["label"] for hit in hits].count("finance") >= 4


def test_cli_with_workers_writes_the_codes_one_process_writes(corpus_file, runner, tmp_path):
    common = [str(corpus_file), "--train-sample", "100", *TINY_CLI]
    one = runner.invoke(cli, ["index", *common, "-o", str(tmp_path / "one")])
    two = runner.invoke(cli, ["index", *common, "-o", str(tmp_path / "two"), "--workers", "2"])
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    assert (np.asarray(Index.open(tmp_path / "one").packed).tobytes()
            == np.asarray(Index.open(tmp_path / "two").packed).tobytes())


@pytest.mark.parametrize("args, message", [
    (["--text-field", "body"], "has no field 'body' (its fields: text, label); choose one with --text-field"),
    (["--glob", "*.rst"], "--glob only apply to other kinds of corpus than lines"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "give --workers or --scheduler, not both"),
])
def test_misuse_of_a_line_corpus_is_one_line(corpus_file, runner, tmp_path, args, message):
    result = runner.invoke(cli, ["index", str(corpus_file), "-o", str(tmp_path / "index"), *args, "--quiet"])
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_workers_on_a_folder_are_refused(runner, corpus_dir, tmp_path):
    result = runner.invoke(cli, ["index", str(corpus_dir), "-o", str(tmp_path / "index"), "--workers", "2"])
    assert result.exit_code == 2 and "--workers only apply to other kinds of corpus than text" in result.output


def test_a_scheduler_that_is_not_there_is_one_line(corpus_file, runner, tmp_path):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        result = runner.invoke(cli, ["index", str(corpus_file), "-o", str(tmp_path / "index"), "--scheduler",
                                     "tcp://127.0.0.1:9", *TINY_CLI])
    assert result.exit_code == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
