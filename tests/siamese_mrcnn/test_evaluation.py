"""One-shot evaluation engine on the tiny COCO-format dataset.

The detectors are plain functions of their inputs: the query image is recognised by
its pixels, the queried category by the colour at the centre of its reference, and the
output is that category's ground truth in the image (optionally perturbed).
"""

import contextlib
import io
import json
import zlib

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from siamese_mrcnn.evaluation import (
    EvalMode, detections_to_coco, evaluate_one_shot, load_partial, make_model_detector,
    merge_partials, run_detections, summarize)
from siamese_mrcnn.config import SiameseConfig
from siamese_mrcnn.splits import split_from_names

from .conftest import CATEGORIES, CONTIGUOUS, HEIGHT, WIDTH

GROUPS = {"seen": [1, 3], "unseen": [2, 4]}  # contiguous ids; COCO ids {2, 9} / {5, 11}
COCO_GROUPS = {"seen": [2, 9], "unseen": [5, 11]}


class TruthDetector:
    """Returns the queried category's ground-truth instances of the query image.

    perturb: shift boxes and masks by up to 3 pixels, random scores, drop some, add
    1 to 13 false positives per query; seeded by (image, category, reference bytes), so the
    output is a function of the inputs. Records every call in ``calls`` and its raw
    outputs in ``raw``.
    """

    def __init__(self, tiny_coco, perturb=False, with_masks=True, fail_after=None):
        self.image_ids = {image.tobytes(): i for i, image in tiny_coco["images"].items()}
        self.truth = tiny_coco["instances"]
        self.perturb, self.with_masks, self.fail_after = perturb, with_masks, fail_after
        self.calls, self.raw = [], []

    @staticmethod
    def category_of(reference):
        centre = reference[reference.shape[0] // 2, reference.shape[1] // 2].astype(int)
        dists = {c: np.abs(centre - np.array(col)).sum() for c, (_, col) in CATEGORIES.items()}
        return min(dists, key=dists.get)

    def __call__(self, image, references):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("simulated crash")
        coco_id = self.image_ids[image.tobytes()]
        categories = [self.category_of(refs[0]) for refs in references]
        self.calls.append((coco_id, categories))
        return [self._detect(coco_id, cat, refs) for cat, refs in zip(categories, references)]

    def _detect(self, coco_id, cat, refs):
        masks = [t["mask"].astype(bool) for t in self.truth[coco_id]
                 if t["category_id"] == cat and not t["crowd"]]
        scores = list(np.linspace(0.9, 0.8, len(masks)))
        if self.perturb:
            rng = np.random.default_rng([coco_id, cat, zlib.crc32(np.stack(refs).tobytes())])
            kept = []
            for m in masks:
                if rng.random() < 0.2:
                    continue
                kept.append(np.roll(m, tuple(rng.integers(-3, 4, size=2)), axis=(0, 1)))
            # Up to 13 false positives, so COCO's 10- vs 100-detection caps differ.
            false_positives = []
            for _ in range(rng.integers(1, 14)):
                fp = np.zeros((HEIGHT, WIDTH), bool)
                y, x = rng.integers(0, HEIGHT - 12), rng.integers(0, WIDTH - 12)
                fp[y:y + rng.integers(4, 12), x:x + rng.integers(4, 12)] = True
                false_positives.append(fp)
            masks = kept + false_positives
            scores = list(rng.uniform(0.1, 1.0, len(masks)))
        stack = np.stack(masks, -1) if masks else np.zeros((HEIGHT, WIDTH, 0), bool)
        rois = np.array([_tight_box(stack[:, :, n]) for n in range(stack.shape[-1])],
                        np.int32).reshape(-1, 4)
        scores = np.array(scores, np.float32)
        self.raw.append((coco_id, cat, rois, scores, stack))
        return {"rois": rois, "scores": scores, "masks": stack if self.with_masks else None}


def _tight_box(mask):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return rows[0], cols[0], rows[-1] + 1, cols[-1] + 1


def _evaluate(dataset, config, detector, **kw):
    kw.setdefault("runs", 2)
    return evaluate_one_shot(dataset, detector, GROUPS, config, progress=False, **kw)


@pytest.mark.parametrize("mode", [EvalMode.faithful(), EvalMode.corrected()])
def test_ground_truth_as_detections_scores_one(tiny_dataset, tiny_coco, tiny_config, mode):
    summary = _evaluate(tiny_dataset, tiny_config, TruthDetector(tiny_coco), mode=mode)
    assert summary["iou_types"] == ["bbox", "segm"]
    for group in ("seen", "unseen"):
        for iou_type in ("bbox", "segm"):
            for metric in ("AP", "AP50"):
                stat = summary["groups"][group][iou_type][metric]
                # pycocotools divides by (tp + fp + eps): perfect is 1 up to rounding.
                assert stat["values"] == pytest.approx([1.0, 1.0], abs=1e-12)
                assert stat["ci95"] == pytest.approx(0.0, abs=1e-12)
    assert summary["settings"]["mode"]["name"] == mode.name
    assert summary["settings"]["num_images"] == 8


def _direct_cocoeval(annotation_file, raw, iou_type, cat_ids, with_boxes=True):
    """pycocotools called directly on results converted here from the raw outputs
    (with boxes and masks, as the original passed them; ``with_boxes=False``: masks
    only for segm)."""
    results = []
    for coco_id, cat, rois, scores, masks in raw:
        for n in range(len(rois)):
            y1, x1, y2, x2 = (float(v) for v in rois[n])
            rle = mask_utils.encode(np.asfortranarray(masks[:, :, n].astype(np.uint8)))
            results.append({"image_id": coco_id, "category_id": cat, "score": float(scores[n]),
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "segmentation": rle})
            if not with_boxes and iou_type == "segm":
                del results[-1]["bbox"]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(annotation_file)
        evaluator = COCOeval(gt, gt.loadRes(results), iou_type)
        evaluator.params.imgIds = sorted(gt.getImgIds())
        evaluator.params.catIds = cat_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats  # AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl


def test_perturbed_detections_equal_direct_cocoeval(tiny_dataset, tiny_coco, tiny_config):
    from siamese_mrcnn.evaluation_results import COCO_METRICS
    detector = TruthDetector(tiny_coco, perturb=True)
    summary = _evaluate(tiny_dataset, tiny_config, detector, runs=1)  # faithful
    run = summary["per_run"][0]
    corrected = TruthDetector(tiny_coco, perturb=True)
    corrected_run = _evaluate(tiny_dataset, tiny_config, corrected, runs=1,
                              mode=EvalMode.corrected())["per_run"][0]
    for group, cat_ids in COCO_GROUPS.items():
        # Corrected segm scoring sorts detections into area ranges by mask area.
        stats = _direct_cocoeval(tiny_coco["annotation_file"], corrected.raw, "segm",
                                 cat_ids, with_boxes=False)
        for metric, expected in zip(COCO_METRICS, stats):
            ours = corrected_run[group]["segm"][metric]
            assert (ours if ours is not None else -1) == expected, (group, metric)
        for iou_type in ("bbox", "segm"):
            stats = _direct_cocoeval(tiny_coco["annotation_file"], detector.raw, iou_type,
                                     cat_ids)
            for metric, expected in zip(COCO_METRICS, stats):
                # COCOeval.summarize prints -1 where we give None (no such objects).
                ours = run[group][iou_type][metric]
                assert (ours if ours is not None else -1) == expected, (group, iou_type, metric)
            assert 0.0 < run[group][iou_type]["AP"] < 1.0
            # Up to 13 false positives per query: recall with 1, 10, 100 detections.
            assert run[group][iou_type]["AR1"] <= run[group][iou_type]["AR100"]


def test_runs_mean_and_interval(tiny_dataset, tiny_coco, tiny_config):
    summary = _evaluate(tiny_dataset, tiny_config, TruthDetector(tiny_coco, perturb=True),
                        runs=3, seed=5)
    values = [r["unseen"]["segm"]["AP"] for r in summary["per_run"]]
    assert len(set(values)) > 1  # fresh references each run change the perturbations
    stat = summary["groups"]["unseen"]["segm"]["AP"]
    assert stat["values"] == values
    assert stat["mean"] == pytest.approx(np.mean(values), abs=1e-15)
    assert stat["ci95"] == pytest.approx(1.96 * np.std(values) / np.sqrt(3), abs=1e-15)


def test_sharded_and_merged_equals_unsharded(tiny_dataset, tiny_coco, tiny_config, tmp_path):
    whole = _evaluate(tiny_dataset, tiny_config, TruthDetector(tiny_coco, perturb=True), seed=3)
    paths = [str(tmp_path / f"shard{i}.jsonl") for i in range(2)]
    for i, path in enumerate(paths):
        part = _evaluate(tiny_dataset, tiny_config, TruthDetector(tiny_coco, perturb=True),
                         seed=3, shard=i, num_shards=2, partial_path=path)
        expected = {(r, img) for img in tiny_dataset.image_ids if img % 2 == i for r in (0, 1)}
        assert set(part.records) == expected
    merged = merge_partials(paths[::-1])
    assert summarize(tiny_dataset, merged) == whole
    with pytest.raises(ValueError, match=r"shard\(s\) \[1\] of 2 missing"):
        merge_partials(paths[:1])
    with pytest.raises(ValueError, match="merge the 2 shard files"):
        summarize(tiny_dataset, load_partial(paths[0]))


def test_interrupted_run_resumes_to_the_same_result(tiny_dataset, tiny_coco, tiny_config,
                                                    tmp_path):
    path = str(tmp_path / "partial.jsonl")
    whole_detector = TruthDetector(tiny_coco, perturb=True)
    whole = _evaluate(tiny_dataset, tiny_config, whole_detector)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _evaluate(tiny_dataset, tiny_config,
                  TruthDetector(tiny_coco, perturb=True, fail_after=5), partial_path=path)
    with open(path, encoding="utf-8") as f:
        # Header and the 5 (run, image) pairs done before the crash (images 3, 7 and 12).
        assert len(f.readlines()) == 1 + 5
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"run": 1, "image": 6, "resu')  # torn by a crash mid-write
    resumed_detector = TruthDetector(tiny_coco, perturb=True)
    resumed = _evaluate(tiny_dataset, tiny_config, resumed_detector, partial_path=path)
    assert len(resumed_detector.calls) == len(whole_detector.calls) - 5
    assert resumed == whole
    assert len(load_partial(path).records) == 16
    # A crash while the header itself was written leaves a file that starts afresh.
    torn = str(tmp_path / "torn.jsonl")
    with open(torn, "w", encoding="utf-8") as f:
        f.write('{"format": "siamese_mrcnn.evalua')
    assert _evaluate(tiny_dataset, tiny_config, TruthDetector(tiny_coco, perturb=True),
                     partial_path=torn) == whole
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no complete header"):
        load_partial(str(empty))
    with pytest.raises(ValueError, match="different settings; 'seed'"):
        _evaluate(tiny_dataset, tiny_config, TruthDetector(tiny_coco), seed=1,
                  partial_path=path)


def test_modes_differ_in_queries_and_reference_sources(tiny_dataset, tiny_coco, tiny_config):
    present = {tiny_dataset.coco_image_id(i): {tiny_dataset.coco_category_id(c) for c in cats}
               for i, cats in enumerate(tiny_dataset.image_category_index)}
    all_cats = [2, 5, 9, 11]
    faithful, corrected = TruthDetector(tiny_coco), TruthDetector(tiny_coco)
    runs = {}
    for mode, det in ((EvalMode.faithful(), faithful), (EvalMode.corrected(), corrected)):
        runs[mode.name] = run_detections(tiny_dataset, det, GROUPS, tiny_config, runs=4,
                                         mode=mode, progress=False)
    for coco_id, cats in faithful.calls:
        assert cats == sorted(present[coco_id], key=all_cats.index)
    assert {c for c, _ in faithful.calls} == set(present) - {21}
    assert {c for c, _ in corrected.calls} == set(present)  # image 21 too
    for _, cats in corrected.calls:
        assert cats == all_cats

    def from_query(partial):
        return [src["image_id"] == img for (_, img), rec in partial.records.items()
                for ref in rec["references"] for src in ref["sources"]]
    assert any(from_query(runs["faithful"]))
    assert not any(from_query(runs["corrected"]))


def test_corrected_mode_filters_low_scores(tiny_dataset, tiny_coco, tiny_config):
    partial = run_detections(tiny_dataset, TruthDetector(tiny_coco, perturb=True), GROUPS,
                             tiny_config, runs=1, mode=EvalMode.corrected(), progress=False)
    scores = [r["score"] for rec in partial.records.values() for r in rec["results"]]
    assert scores and min(scores) >= 0.05
    custom = EvalMode("strict", False, True, False, min_confidence=0.6)
    partial = run_detections(tiny_dataset, TruthDetector(tiny_coco, perturb=True), GROUPS,
                             tiny_config, runs=1, mode=custom, progress=False)
    scores = [r["score"] for rec in partial.records.values() for r in rec["results"]]
    assert scores and min(scores) >= 0.6


def test_k_shot_gives_k_references(tiny_dataset, tiny_coco, tiny_config):
    seen_shapes = []

    def detector(image, references):
        seen_shapes.extend(np.stack(refs).shape for refs in references)
        return [{"rois": np.zeros((0, 4)), "scores": np.zeros(0), "masks": None}
                for _ in references]
    partial = run_detections(tiny_dataset, detector, GROUPS, tiny_config, runs=1, shots=3,
                             progress=False)
    assert seen_shapes and set(seen_shapes) == {(3, 32, 32, 3)}
    assert all(len(ref["sources"]) == 3 for rec in partial.records.values()
               for ref in rec["references"])


def test_box_only_detector_scores_bbox_only(tiny_dataset, tiny_coco, tiny_config):
    summary = _evaluate(tiny_dataset, tiny_config, TruthDetector(tiny_coco, with_masks=False))
    assert summary["iou_types"] == ["bbox"]
    assert summary["groups"]["seen"]["bbox"]["AP"]["mean"] == pytest.approx(1.0, abs=1e-12)
    assert "segm" not in summary["groups"]["seen"]


def test_limit_and_groups_without_ground_truth(tiny_dataset, tiny_coco, tiny_config):
    detector = TruthDetector(tiny_coco)
    summary = evaluate_one_shot(tiny_dataset, detector, {"a": [1], "b": [2, 4]}, tiny_config,
                                runs=1, limit=2, progress=False)
    assert {c for c, _ in detector.calls} == {3, 7}  # the two lowest COCO image ids
    assert summary["settings"]["num_images"] == 2
    assert summary["groups"]["a"]["bbox"]["AP"] == {"mean": None, "ci95": None,
                                                   "values": [None]}
    assert summary["groups"]["b"]["segm"]["AP"]["mean"] == pytest.approx(1.0, abs=1e-12)


def test_classes_from_a_split(tiny_dataset, tiny_coco, tiny_config):
    split = split_from_names(tiny_dataset, ["c11", "c5"], name="tiny")
    summary = evaluate_one_shot(tiny_dataset, TruthDetector(tiny_coco), split, tiny_config,
                                runs=1, progress=False)
    assert summary["settings"]["classes"] == GROUPS
    assert summary["settings"]["split"] == "tiny"
    assert set(summary["groups"]) == {"seen", "unseen"}


def test_detector_output_is_checked(tiny_dataset, tiny_config):
    def wrong_count(image, references):
        return []
    with pytest.raises(ValueError, match="returned 0 results for 1 queried categories"):
        run_detections(tiny_dataset, wrong_count, GROUPS, tiny_config, runs=1, progress=False)
    with pytest.raises(ValueError, match=r"class id\(s\) \[7\]"):
        run_detections(tiny_dataset, wrong_count, {"x": [7]}, tiny_config, progress=False)
    with pytest.raises(ValueError, match="shard must be in 0..1"):
        run_detections(tiny_dataset, wrong_count, GROUPS, tiny_config, shard=2, num_shards=2)


def test_detections_to_coco_by_hand():
    masks = np.zeros((6, 8, 2), bool)
    masks[2:5, 3:7, 0] = True
    masks[0:1, 0:2, 1] = True
    det = {"rois": np.array([[2, 3, 5, 7], [0, 0, 1, 2]]), "scores": np.array([0.9, 0.3]),
           "masks": masks}
    out = detections_to_coco(det, 42, 7, (6, 8), min_confidence=0.5)
    assert len(out) == 1
    assert out[0]["bbox"] == [3.0, 2.0, 4.0, 3.0] and out[0]["score"] == pytest.approx(0.9)
    assert (out[0]["image_id"], out[0]["category_id"]) == (42, 7)
    assert isinstance(out[0]["segmentation"]["counts"], str)
    json.dumps(out)  # JSON-ready
    np.testing.assert_array_equal(mask_utils.decode(out[0]["segmentation"]), masks[:, :, 0])
    assert len(detections_to_coco(det, 42, 7, (6, 8))) == 2
    with pytest.raises(ValueError, match=r"image 42, category 7: masks must be .*\[6, 8, 2\]"):
        detections_to_coco(dict(det, masks=masks[:5]), 42, 7, (6, 8))


class _Model:
    """Stands in for SiameseMaskRCNN's inference interface (config + detect_multi)."""

    class config:
        DETECTION_MIN_CONFIDENCE = 0.7
        RESAMPLING = "faithful"

    def __init__(self):
        self.flags = []

    def detect_multi(self, image, reference_sets, subtract_reference_mean=True):
        self.flags.append(subtract_reference_mean)
        return [{"rois": np.zeros((0, 4), np.int32), "class_ids": np.zeros(0, np.int32),
                 "scores": np.zeros(0), "masks": np.zeros(image.shape[:2] + (0,), bool)}
                for _ in reference_sets]


def test_make_model_detector_applies_the_mode():
    model = _Model()
    detector = make_model_detector(model, EvalMode.faithful())
    out = detector(np.zeros((4, 5, 3), np.uint8), [[np.zeros((2, 2, 3), np.uint8)]] * 2)
    assert len(out) == 2 and set(out[0]) == {"rois", "scores", "masks"}
    assert model.flags == [False]
    with pytest.raises(ValueError, match="build it with RESAMPLING='corrected'"):
        make_model_detector(model, EvalMode.corrected())
    model.config.RESAMPLING = "corrected"
    with pytest.raises(ValueError, match="DETECTION_MIN_CONFIDENCE=0.05"):
        make_model_detector(model, EvalMode.corrected())
    model.config.RESAMPLING = "faithful"
    assert EvalMode.corrected().detection_min_confidence(model.config) == 0.05
    assert EvalMode.from_name("faithful").detection_min_confidence(model.config) == 0.7
    with pytest.raises(ValueError, match="unknown evaluation mode 'fast'"):
        EvalMode.from_name("fast")


def test_contiguous_ids_used_by_groups_match_fixture():
    assert [CONTIGUOUS[c] for c in COCO_GROUPS["seen"]] == GROUPS["seen"]
    assert [CONTIGUOUS[c] for c in COCO_GROUPS["unseen"]] == GROUPS["unseen"]


# ------------------------------------------------------------- category presence
def _vanishing_instance_dataset(root):
    """Three 300x300 images: image 1 holds only a one-pixel instance of category 7
    at (1, 1) (it vanishes when the original's nearest zoom down-scales by 128/300,
    which samples rows and columns 0, 2, 5, ...); images 2 and 3 a 60x60 square of
    it. Category 8 is in image 2 only."""
    import os

    import skimage.io
    from siamese_mrcnn.coco import CocoDataset
    from .conftest import uncompressed_rle, write_coco_json
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    shapes = {1: [(7, (1, 1, 2, 2))], 2: [(7, (50, 50, 110, 110)), (8, (150, 20, 200, 90))],
              3: [(7, (100, 120, 160, 180))]}
    images, annotations = [], []
    for image_id, instances in shapes.items():
        pixels = np.full((300, 300, 3), 90, np.uint8)
        for n, (cat, (y1, x1, y2, x2)) in enumerate(instances):
            mask = np.zeros((300, 300), np.uint8)
            mask[y1:y2, x1:x2] = 1
            pixels[mask.astype(bool)] = (200, 40, 40) if cat == 7 else (40, 200, 40)
            annotations.append({"id": 10 * image_id + n, "image_id": image_id,
                                "category_id": cat, "iscrowd": 0,
                                "segmentation": uncompressed_rle(mask),
                                "area": float(mask.sum()),
                                "bbox": [x1, y1, x2 - x1, y2 - y1]})
        name = f"{image_id}.png"
        skimage.io.imsave(os.path.join(root, "images", name), pixels, check_contrast=False)
        images.append({"id": image_id, "file_name": name, "height": 300, "width": 300})
    path = os.path.join(root, "instances.json")
    write_coco_json(path, images, annotations,
                    [{"id": 7, "name": "dot"}, {"id": 8, "name": "bar"}])
    dataset = CocoDataset()
    dataset.load_coco_file(path, os.path.join(root, "images"))
    dataset.prepare()
    return dataset


class PresenceConfig(SiameseConfig):
    NAME = "presence"
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 128
    TARGET_MIN_DIM = 24
    TARGET_MAX_DIM = 32


def test_faithful_mode_queries_what_survives_the_resize(tmp_path):
    from siamese_mrcnn.references import classes_after_resize
    dataset = _vanishing_instance_dataset(str(tmp_path))
    config = PresenceConfig()
    dot, bar = dataset.class_id_from_category(7), dataset.class_id_from_category(8)
    first = dataset.image_index_from_coco(1)
    # The annotations say image 1 holds a dot; after the original's resize it holds none.
    assert list(dataset.image_category_index[first]) == [dot]
    assert classes_after_resize(dataset, first, config, "faithful") == []
    assert classes_after_resize(dataset, first, config, "corrected") == [dot]
    assert classes_after_resize(dataset, dataset.image_index_from_coco(2), config,
                                "faithful") == [dot, bar]

    def detector(image, references):
        return [{"rois": np.zeros((0, 4)), "scores": np.zeros(0), "masks": None}
                for _ in references]

    def queried_pairs(mode):
        partial = run_detections(dataset, detector, {"all": [dot, bar]}, config, runs=1,
                                 mode=mode, progress=False)
        return sorted((dataset.coco_image_id(img), ref["class_id"])
                      for (_, img), rec in partial.records.items()
                      for ref in rec["references"])

    faithful = queried_pairs(EvalMode.faithful())
    assert faithful == [(2, dot), (2, bar), (3, dot)]          # image 1 never queried
    by_annotations = EvalMode("faithful-annotations", False, True, False, None,
                              resampling="faithful", presence="annotations")
    assert queried_pairs(by_annotations) == [(1, dot)] + faithful
