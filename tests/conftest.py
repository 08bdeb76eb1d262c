"""Small generated corpora and a tiny model configuration, so the suite runs in minutes on 2 cores."""

import contextlib
import json
import signal

import numpy as np
import pytest
from click.testing import CliRunner

from semhash.cli import cli

TOPICS = {
    "sports": {
        "en": "football match goal striker coach league season champion stadium referee tournament players".split(),
        "zh": "足球 比赛 进球 球员 教练 联赛 冠军 球队 裁判 决赛 赛季 球迷".split(),
    },
    "finance": {
        "en": "bank interest rates inflation bonds stocks market investors currency earnings dividend shares".split(),
        "zh": "股票 银行 利率 央行 通胀 债券 投资 基金 汇率 市场 股市 收益".split(),
    },
    "cooking": {
        "en": "recipe kitchen flour butter oven garlic noodles dumplings sauce chef bake soup".split(),
        "zh": "厨师 面条 饺子 火锅 调料 食材 烹饪 菜谱 酱油 米饭 汤 蔬菜".split(),
    },
}
# Tiny but real: the same code paths as a full run, trained for a few steps.
TINY_MODEL = {"hidden": (32,), "bits": 16, "pretrain_epochs": 10, "epochs": 30, "min_steps": 0, "min_pretrain_steps": 0,
              "batch_size": 8, "members": 1}
TINY_CLI = ["--hidden", "32", "--bits", "16", "--pretrain-epochs", "10", "--epochs", "30", "--min-steps", "0",
            "--min-pretrain-steps", "0", "--batch-size", "8", "--min-df", "1", "--members", "1", "--quiet"]


def topic_text(rng, topic, language, words=24):
    """A document of topic words, English words spaced, Chinese words run together."""
    pool = TOPICS[topic][language]
    chosen = rng.choice(pool, size=words)
    if language == "en":
        return "The " + " ".join(chosen) + ".\n"
    return "。".join("".join(chosen[i : i + 6]) for i in range(0, words, 6)) + "。\n"


def write_corpus(root, per_topic=24, seed=0):
    """A labelled corpus: topic subfolders holding English and Chinese documents."""
    rng = np.random.default_rng(seed)
    for topic in TOPICS:
        folder = root / topic
        folder.mkdir(parents=True)
        for i in range(per_topic):
            language = "en" if i % 2 == 0 else "zh"
            (folder / f"{language}-{i:02d}.txt").write_text(topic_text(rng, topic, language), encoding="utf-8")
    return root


@pytest.fixture
def corpus_dir(tmp_path):
    return write_corpus(tmp_path / "corpus")


@pytest.fixture(scope="session")
def built_index(tmp_path_factory):
    """An index of a generated corpus, built once through the CLI and shared (read-only)."""
    base = tmp_path_factory.mktemp("built")
    corpus = write_corpus(base / "corpus")
    output = base / "index"
    result = CliRunner().invoke(cli, ["index", str(corpus), "-o", str(output), *TINY_CLI])
    assert result.exit_code == 0, result.output
    return output


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Blocked(BaseException):
    """A block that ran out of time; not an Exception, so that no reader's error handling swallows it."""


@contextlib.contextmanager
def deadline(seconds=30):
    """Fail the block with Blocked after `seconds` instead of hanging: for reads that would block
    forever if a reader regressed (a FIFO with no writer)."""

    def expire(signum, frame):
        raise Blocked(f"still running after {seconds} s: a read blocked")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
