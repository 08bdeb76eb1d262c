"""The 2-D map of an index's codes, and `semhash map`."""

import numpy as np
from click.testing import CliRunner
from conftest import json_lines
from PIL import Image

from semhash.cli import cli
from semhash.codemap import CodeMap
from semhash.index.index import Index


def test_the_map_places_every_item_and_separates_the_labels(built_index):
    index = Index.open(built_index)
    drawn = CodeMap().fit(index)
    assert len(drawn.ids_) == len(index) == len(drawn.points_) and drawn.points_.shape[1] == 2
    assert set(drawn.colours_) == {"sports", "finance", "cooking"}
    assert 0 < sum(drawn.explained_) <= 1
    labels = np.array(drawn.labels_)
    centres = {label: drawn.points_[labels == label].mean(axis=0) for label in drawn.colours_}
    spread = np.mean([np.linalg.norm(drawn.points_[labels == label] - centre, axis=1).mean()
                      for label, centre in centres.items()])
    apart = np.mean([np.linalg.norm(centres[a] - centres[b]) for a in centres for b in centres if a < b])
    assert apart > spread  # three topics: three clouds
    again = CodeMap().fit(index)
    np.testing.assert_array_equal(again.points_, drawn.points_)  # the seed fixes the map


def test_a_large_index_is_sampled(built_index):
    index = Index.open(built_index)
    drawn = CodeMap(max_points=10, seed=3).fit(index)
    assert len(drawn.ids_) == 10 and list(drawn.rows_) == sorted(drawn.rows_)
    assert drawn.ids_ == [index.records[row]["id"] for row in drawn.rows_]
    shown = drawn.to_json(len(index))
    assert shown["shown"] == 10 and shown["items"] == len(index) and len(shown["points"]) == 10
    assert set(shown["points"][0]) == {"id", "label", "x", "y"}


def test_semhash_map_writes_a_png_atomically(built_index, tmp_path):
    out = tmp_path / "map.png"
    result = CliRunner().invoke(cli, ["map", str(built_index), "-o", str(out)])
    assert result.exit_code == 0, result.output
    row = json_lines(result.stdout)[0]
    assert row["map"] == str(out) and row["shown"] == row["items"] == 72 and row["labels"] == 3
    with Image.open(out) as drawn:
        assert drawn.format == "PNG" and drawn.size == (900, 700)
    assert [path.name for path in tmp_path.iterdir()] == ["map.png"]  # no temporary file left


def test_semhash_map_refuses_a_folder_as_output(built_index, tmp_path):
    result = CliRunner().invoke(cli, ["map", str(built_index), "-o", str(tmp_path)])
    assert result.exit_code == 2 and "is a folder" in result.output and "Traceback" not in result.output


def test_t_sne_separates_the_labels_and_the_seed_fixes_it(built_index):
    index = Index.open(built_index)
    drawn = CodeMap(projection="tsne").fit(index)
    assert drawn.projection_ == "tsne" and drawn.explained_ is None and drawn.points_.shape == (len(index), 2)
    labels = np.array(drawn.labels_)
    distances = np.linalg.norm(drawn.points_[:, None] - drawn.points_[None], axis=2)
    nearest = np.argsort(distances, axis=1)[:, 1:6]
    assert (labels[nearest] == labels[:, None]).mean() > 0.8  # three topics: a point's neighbours share its topic
    np.testing.assert_array_equal(CodeMap(projection="tsne").fit(index).points_, drawn.points_)
    assert CodeMap(max_points=3, projection="tsne").fit(index).projection_ == "pca"  # too few for t-SNE
    assert drawn.to_json(len(index))["method"] == "tsne"


def test_semhash_map_draws_t_sne_by_default_and_pca_when_asked(built_index, tmp_path):
    for projection, how in ((None, "by t-SNE"), ("pca", "by PCA")):
        out = tmp_path / f"{projection}.png"
        result = CliRunner().invoke(cli, ["map", str(built_index), "-o", str(out), "--plain",
                                          *(["--projection", projection] if projection else [])])
        assert result.exit_code == 0 and how in result.stdout, result.output
    result = CliRunner().invoke(cli, ["map", str(built_index), "-o", str(tmp_path / "x.png"), "--projection", "umap"])
    assert result.exit_code == 2 and "umap" in result.output
