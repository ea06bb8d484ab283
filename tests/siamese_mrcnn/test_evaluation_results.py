"""Scoring helpers: COCO AP over chosen classes, run statistics, split averages, table, report."""

import json

import numpy as np
import pytest

from siamese_mrcnn.evaluation import EvalMode
from siamese_mrcnn.evaluation_results import (
    COCO_METRICS, coco_ap, combine_reports, combine_splits, format_paper_table, format_table,
    load_results, mean_and_ci, package_versions, results_for_iou_type, write_report)


def _truth_results(coco, image_ids, cat_ids, score=0.9):
    """The ground truth's non-crowd boxes as bbox results."""
    anns = coco.loadAnns(coco.getAnnIds(imgIds=image_ids, catIds=cat_ids, iscrowd=False))
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "score": score} for a in anns]


def test_coco_ap_ignores_categories_without_ground_truth(tiny_dataset):
    coco = tiny_dataset.coco
    # Images 3 and 7 hold categories 5 (twice) and 11; category 9 appears in neither.
    results = _truth_results(coco, [3, 7], [5, 11])
    results[0] = dict(results[0], bbox=[0.0, 0.0, 5.0, 5.0])  # one miss of category 5
    both = coco_ap(coco, results, "bbox", [3, 7], [5, 9])
    alone = coco_ap(coco, results, "bbox", [3, 7], [5])
    assert both["per_category"][9] == {"AP": None, "AP50": None}
    assert both["AP"] == alone["AP"] and both["AP50"] == alone["AP50"]
    # Category 5 has 2 instances: image 3's (its box replaced by a miss) and image 7's.
    # Both score 0.9; the tie keeps image order, so the ranking is miss, hit: recall
    # [0, 0.5], precision [0, 0.5] -> interpolated 0.5 at the 51 recall points
    # 0.00..0.50 and 0 above, at every IoU threshold: AP = AP50 = 0.5 * 51 / 101.
    assert alone["AP"] == pytest.approx(0.5 * 51 / 101, rel=1e-12)
    assert alone["AP50"] == pytest.approx(0.5 * 51 / 101, rel=1e-12)
    perfect = coco_ap(coco, _truth_results(coco, [3, 7], [5, 11]), "bbox", [3, 7], [5, 11])
    # pycocotools divides by (tp + fp + eps), so a perfect score is 1 up to rounding.
    assert perfect["AP"] == pytest.approx(1.0, abs=1e-12)
    assert perfect["per_category"][11]["AP50"] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="no category ids"):
        coco_ap(coco, results, "bbox", [3], [])


def test_hand_computed_ap_single_category(tiny_dataset):
    coco = tiny_dataset.coco
    # Image 28 has one category-9 instance. A false positive scored above the true
    # detection: precision at recall 1 is 1/2, so every recall point has precision 0.5.
    true = _truth_results(coco, [28], [9], score=0.5)
    false = [dict(true[0], bbox=[0.0, 0.0, 4.0, 4.0], score=0.9)]
    scores = coco_ap(coco, false + true, "bbox", [28], [9])
    assert scores["AP"] == pytest.approx(0.5) and scores["AP50"] == pytest.approx(0.5)
    assert coco_ap(coco, [], "bbox", [28], [9])["AP"] == 0.0  # nothing detected


def test_empty_results_and_field_selection(tiny_dataset):
    empty = load_results(tiny_dataset.coco, [])
    assert empty.getAnnIds() == [] and sorted(empty.getImgIds()) == [3, 7, 12, 21, 28, 33,
                                                                      40, 50]
    r = {"image_id": 3, "category_id": 5, "bbox": [1, 2, 3, 4], "score": 0.5,
         "segmentation": {"size": [2, 2], "counts": "04"}}
    assert set(results_for_iou_type([r], "bbox")[0]) == {"image_id", "category_id", "bbox",
                                                         "score"}
    assert "bbox" not in results_for_iou_type([r], "segm")[0]
    with pytest.raises(ValueError, match="segm evaluation needs masks"):
        results_for_iou_type([{k: v for k, v in r.items() if k != "segmentation"}], "segm")
    with pytest.raises(ValueError, match="iou_type must be one of"):
        results_for_iou_type([r], "keypoints")


def test_mean_and_ci_by_hand():
    stat = mean_and_ci([0.2, 0.4])
    assert stat["mean"] == pytest.approx(0.3)
    assert stat["ci95"] == pytest.approx(1.96 * 0.1 / np.sqrt(2))  # population std 0.1
    assert mean_and_ci([0.5, None]) == {"mean": None, "ci95": None, "values": [0.5, None]}


def _summary(values_by_run, split):
    per_run = [{"unseen": {"bbox": {"AP": v, "AP50": 2 * v}}} for v in values_by_run]
    return {"iou_types": ["bbox"], "per_run": per_run, "groups": {"unseen": {}},
            "settings": {"split": split}}


def test_combine_splits_averages_per_run_then_over_runs():
    combined = combine_splits([_summary([0.1, 0.3], 1), _summary([0.3, 0.1], 2)])
    ap = combined["groups"]["unseen"]["bbox"]["AP"]
    # Per-run split means are 0.2 and 0.2: the interval over runs is 0.
    assert ap["values"] == pytest.approx([0.2, 0.2]) and ap["ci95"] == pytest.approx(0.0)
    assert combined["groups"]["unseen"]["bbox"]["AP50"]["mean"] == pytest.approx(0.4)
    assert combined["splits"] == [1, 2]
    with pytest.raises(ValueError, match="differ in runs"):
        combine_splits([_summary([0.1], 1), _summary([0.1, 0.2], 2)])


def _report(split, unseen_ap_by_run, mode="faithful", shots=1):
    """A report of one split: unseen and seen, bbox and segm, every COCO metric set to
    the run's value (seen: twice it), as write_report stores it."""
    per_run = [{g: {t: {m: (2 if g == "seen" else 1) * v for m in COCO_METRICS}
                    for t in ("bbox", "segm")} for g in ("seen", "unseen")}
               for v in unseen_ap_by_run]
    return {"summary": {"iou_types": ["bbox", "segm"], "per_run": per_run,
                        "groups": {"seen": {}, "unseen": {}},
                        "settings": {"split": split, "mode": {"name": mode}, "shots": shots,
                                     "runs": len(per_run), "baseline": None,
                                     "weights": f"i{split}.h5"}}}


def test_combine_reports_gives_the_paper_table():
    # Four splits, two runs. Run 0 averages to 0.10, run 1 to 0.20 over the splits.
    reports = [_report(1, [0.08, 0.22]), _report(2, [0.12, 0.18]), _report(3, [0.10, 0.20]),
               _report(4, [0.10, 0.20])]
    combined = combine_reports(reports, [f"s{i}.json" for i in range(1, 5)])
    unseen_ap50 = combined["groups"]["unseen"]["segm"]["AP50"]
    assert unseen_ap50["values"] == pytest.approx([0.10, 0.20])
    assert unseen_ap50["mean"] == pytest.approx(0.15)
    assert unseen_ap50["ci95"] == pytest.approx(1.96 * 0.05 / np.sqrt(2))
    assert combined["groups"]["seen"]["bbox"]["APl"]["mean"] == pytest.approx(0.30)
    assert combined["settings"]["splits"] == [1, 2, 3, 4]
    assert combined["settings"]["weights"] == ["i1.h5", "i2.h5", "i3.h5", "i4.h5"]
    # seen: runs 0.20 and 0.40 -> 30.00 ± 1.96 * 0.10 / sqrt(2) = 13.86.
    assert format_paper_table(combined).splitlines() == [
        "classes  det AP         det AP50       segm AP        segm AP50",
        "-------  -------------  -------------  -------------  -------------",
        "seen     30.00 ± 13.86  30.00 ± 13.86  30.00 ± 13.86  30.00 ± 13.86",
        "unseen   15.00 ± 6.93   15.00 ± 6.93   15.00 ± 6.93   15.00 ± 6.93",
    ]
    with pytest.raises(ValueError, match=r"s2.json: mode \{\"name\": \"corrected\"\}"):
        combine_reports([reports[0], _report(2, [0.1, 0.2], mode="corrected")],
                        ["s1.json", "s2.json"])
    with pytest.raises(ValueError, match=r"split\(s\) \['1'\] given more than once"):
        combine_reports([reports[0], reports[0]])
    with pytest.raises(ValueError, match="s2.json: runs 3"):
        combine_reports([reports[0], _report(2, [0.1, 0.2, 0.3])], ["s1.json", "s2.json"])


def test_format_table():
    stat = {"mean": 0.229, "ci95": 0.0031}
    summary = {"groups": {
        "seen": {"bbox": {"AP": stat, "AP50": {"mean": 0.376, "ci95": 0.0}},
                 "segm": {"AP": stat, "AP50": stat}},
        "unseen": {"bbox": {"AP": {"mean": None, "ci95": None}, "AP50": stat}}}}
    assert format_table(summary).splitlines() == [
        "classes  type  AP            AP50",
        "-------  ----  ------------  ------------",
        "seen     bbox  22.90 ± 0.31  37.60 ± 0.00",
        "seen     segm  22.90 ± 0.31  22.90 ± 0.31",
        "unseen   bbox  -             22.90 ± 0.31",
    ]


def test_write_report(tmp_path, tiny_config):
    summary = {"groups": {"seen": {"bbox": {"AP": {"mean": 0.5, "ci95": 0.01},
                                            "AP50": {"mean": np.float64(0.7), "ci95": 0.0}}}}}
    path = tmp_path / "out" / "report.json"
    write_report(str(path), summary, tiny_config, {"seed": 3, "runs": 5},
                 EvalMode.corrected())
    report = json.loads(path.read_text())
    assert report["config"]["NAME"] == "tiny_one_shot"
    assert report["config"]["TARGET_MAX_DIM"] == 32
    assert report["seeds"] == {"seed": 3, "runs": 5}
    assert report["mode"]["name"] == "corrected" and report["mode"]["min_confidence"] == 0.05
    assert report["versions"]["numpy"] == np.__version__
    assert report["summary"]["groups"]["seen"]["bbox"]["AP50"]["mean"] == 0.7
    assert report["table"][2].startswith("seen     bbox  50.00 ± 1.00")
    assert not (tmp_path / "out" / "report.json.tmp").exists()


def test_package_versions_does_not_import_tensorflow():
    import sys
    had_tf = "tensorflow" in sys.modules
    versions = package_versions()
    assert {"python", "numpy", "pycocotools", "tensorflow", "keras"} <= set(versions)
    assert ("tensorflow" in sys.modules) == had_tf
