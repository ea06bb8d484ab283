"""Item 9: the corrected evaluation mode with a class present in a single image.

The corrected mode draws references from images other than the query. Before the
issue, a class found in only one evaluation image (no other image to draw from)
ended ``evaluate --mode corrected`` with a traceback. The rule now (see
``siamese_mrcnn.evaluation``): that query's reference comes from the query image
itself, marked, counted and warned about; a class with no usable instance anywhere
is not queried, counted too.
"""

import json
import logging
import os

from siamese_mrcnn.cli import main
from tests.robustness.conftest import write_annotations

# COCO ids: c2 = 2 (contiguous 1), c9 = 9 (contiguous 3). Images in evaluation order
# (sorted COCO id): 3, 7, 12, 21, 28, ...; image 28 is index 4.
ONLY_IN_28 = 9
ONLY_CROWDS = 2


def test_corrected_mode_with_a_class_in_a_single_image(trained_run, tiny_coco, tmp_path,
                                                       capsys, caplog):
    with open(tiny_coco["annotation_file"]) as f:
        data = json.load(f)
    data["annotations"] = [
        a for a in data["annotations"]
        if not (a["category_id"] == ONLY_IN_28 and a["image_id"] != 28)
        and not (a["category_id"] == ONLY_CROWDS and not a["iscrowd"])]
    annotations = write_annotations(tmp_path / "single.json", data)
    partial, report = str(tmp_path / "partial.jsonl"), str(tmp_path / "report.json")
    with caplog.at_level(logging.WARNING, logger="siamese_mrcnn.evaluation"):
        assert main(["evaluate", "--annotations", annotations, "--images",
                     tiny_coco["image_dir"], "--weights", trained_run["checkpoints"][1],
                     "--mode", "corrected", "--runs", "1", "--limit", "5",
                     "--partial", partial, "--output", report]) == 0

    with open(report) as f:
        settings = json.load(f)["summary"]["settings"]
    assert settings["queries"] == 5 * 4  # every class in every image (corrected)
    assert settings["same_image_references"] == 1  # c9 in image 28
    assert settings["unreferenced_queries"] == 5  # c2 (only a crowd left) everywhere
    with open(partial) as f:
        records = {(r["run"], r["image"]): r for r in map(json.loads, list(f)[1:])}
    for (_, image), record in records.items():
        assert record["unreferenced"] == [1]
        for ref in record["references"]:
            same = [s["image_id"] == image for s in ref["sources"]]
            # Only c9's query in image 28 uses its own image, and says so.
            assert any(same) == (ref["class_id"] == 3 and image == 4)
            assert ref.get("same_image", False) == any(same)

    out = capsys.readouterr().out
    assert "note: 1 of 20 queries drew their reference from the query image itself" in out
    assert "note: 5 of 20 queries were skipped (no image holds a usable instance" in out
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings.count(
        "corrected mode: no image other than the query holds a usable instance of class 3 "
        "('c9') (e.g. COCO image 28): its reference there comes from the query image "
        "itself (counted as same_image_references)") == 1
    assert warnings.count(
        "no image holds a usable non-crowd instance of class 1 ('c2'): its queries are "
        "skipped (counted as unreferenced_queries)") == 1
    assert os.path.getsize(partial) > 0
