"""Scoring and reporting of one-shot evaluations (SPEC section 5).

Shape shorthand for pycocotools' ``COCOeval.eval["precision"]``: ``[T, R, K, A, M]``
with ``T`` IoU thresholds (0.50:0.05:0.95), ``R`` 101 recall points, ``K`` evaluated
categories, ``A`` area ranges (index of "all" used), ``M`` max detections per image
(the 100 entry used). Entries of -1 mark (category, threshold) cells without ground
truth and are left out of every average.

Results are COCO result dicts: ``image_id`` and ``category_id`` in the annotation
file's ids, ``bbox`` [x, y, w, h] float pixels, ``score``, and for mask models
``segmentation`` as an RLE dict whose ``counts`` is a str.

AP values are fractions in [0, 1]; :func:`format_table` prints percent. Over N runs
we report the mean and the half-width ``1.96 * std / sqrt(N)`` (population std,
``ddof=0``, as the original project computed it).
"""

import contextlib
import copy
import datetime
import importlib.metadata
import io
import json
import os
import platform

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

IOU_TYPES = ("bbox", "segm")
METRICS = ("AP", "AP50")
CI_FACTOR = 1.96


def load_results(coco_gt, results):
    """pycocotools ``COCO`` of detection results; an empty list is allowed.

    ``COCO.loadRes`` rejects an empty list and edits the dicts it gets, so the
    results are copied first.
    """
    results = [dict(r) for r in results]
    if results:
        with contextlib.redirect_stdout(io.StringIO()):
            return coco_gt.loadRes(results)
    empty = COCO()
    empty.dataset = {"images": list(coco_gt.dataset.get("images", [])),
                     "categories": copy.deepcopy(coco_gt.dataset.get("categories", [])),
                     "annotations": []}
    with contextlib.redirect_stdout(io.StringIO()):
        empty.createIndex()
    return empty


def results_for_iou_type(results, iou_type):
    """The fields COCOeval reads for ``iou_type``: boxes only for "bbox"; masks only
    for "segm" (so pycocotools takes detection areas from the masks, not the boxes)."""
    if iou_type == "bbox":
        return [{k: r[k] for k in ("image_id", "category_id", "bbox", "score")}
                for r in results]
    if iou_type == "segm":
        missing = [i for i, r in enumerate(results) if "segmentation" not in r]
        if missing:
            raise ValueError(f"segm evaluation needs masks: {len(missing)} result(s) have no "
                             f"'segmentation' (first at position {missing[0]})")
        return [{k: r[k] for k in ("image_id", "category_id", "segmentation", "score")}
                for r in results]
    raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")


def _mean_valid(values):
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else None


def coco_ap(coco_gt, results, iou_type, image_ids, cat_ids):
    """COCO AP and AP50 of ``results`` over the given images, averaged over ``cat_ids`` only.

    Runs pycocotools' COCOeval with ``params.imgIds = image_ids`` and
    ``params.catIds = cat_ids`` (COCO ids) and averages ``precision[:, :, :, all, 100]``
    over its entries > -1, exactly as ``COCOeval.summarize`` does for its first two
    numbers.

    Returns:
        {"AP": float or None, "AP50": float or None, "per_category": {cat_id:
        {"AP", "AP50"}}}; None where no evaluated image has ground truth of the
        category (group).
    """
    image_ids = sorted({int(i) for i in image_ids})
    cat_ids = sorted({int(c) for c in cat_ids})
    if not cat_ids:
        raise ValueError("coco_ap: no category ids to evaluate")
    dt = load_results(coco_gt, results_for_iou_type(results, iou_type))
    evaluator = COCOeval(coco_gt, dt, iou_type)
    evaluator.params.imgIds = image_ids
    evaluator.params.catIds = cat_ids
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    params = evaluator.params
    area = params.areaRngLbl.index("all")
    max_dets = params.maxDets.index(100)
    precision = evaluator.eval["precision"][:, :, :, area, max_dets]  # [T, R, K]
    at_50 = int(np.flatnonzero(params.iouThrs == 0.5)[0])
    per_category = {
        cat: {"AP": _mean_valid(precision[:, :, k]), "AP50": _mean_valid(precision[at_50, :, k])}
        for k, cat in enumerate(params.catIds)}
    return {"AP": _mean_valid(precision), "AP50": _mean_valid(precision[at_50]),
            "per_category": per_category}


def mean_and_ci(values):
    """{"mean", "ci95", "values"} of per-run values; mean and ci95 are None if any
    value is None (a group without ground truth)."""
    values = list(values)
    if not values or any(v is None for v in values):
        return {"mean": None, "ci95": None, "values": values}
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()),
            "ci95": float(CI_FACTOR * arr.std() / np.sqrt(len(arr))),
            "values": [float(v) for v in arr]}


def score_runs(coco_gt, run_results, image_ids, groups, category_names=None):
    """Score N runs of pooled results per class group and IoU type.

    Args:
        coco_gt: the ground truth ``COCO``.
        run_results: list over runs of lists of COCO result dicts.
        image_ids: COCO image ids evaluated.
        groups: {group name: COCO category ids}, e.g. seen and unseen.
        category_names: optional {category id: name} for the per-category tables.
    Returns:
        {"iou_types": [...], "per_run": [{group: {iou_type: coco_ap-dict}}],
        "groups": {group: {iou_type: {"AP": mean_and_ci, "AP50": mean_and_ci}}}}.
        "segm" is scored only when every result has a mask; a mixture of results
        with and without masks raises ValueError.
    """
    with_masks = {("segmentation" in r) for results in run_results for r in results}
    if with_masks == {True, False}:
        raise ValueError("some results have masks and some do not; a model gives all or none")
    iou_types = ["bbox"] if with_masks == {False} else list(IOU_TYPES)
    names = category_names or {}
    per_run = []
    for results in run_results:
        run = {}
        for group, cat_ids in groups.items():
            run[group] = {}
            for iou_type in iou_types:
                scores = coco_ap(coco_gt, results, iou_type, image_ids, cat_ids)
                scores["per_category"] = {names.get(c, str(c)): v
                                          for c, v in scores["per_category"].items()}
                run[group][iou_type] = scores
        per_run.append(run)
    aggregated = {
        group: {iou_type: {m: mean_and_ci([run[group][iou_type][m] for run in per_run])
                           for m in METRICS}
                for iou_type in iou_types}
        for group in groups}
    return {"iou_types": iou_types, "per_run": per_run, "groups": aggregated}


def combine_splits(summaries):
    """Average several summaries (e.g. the 4 splits) run by run, then over runs.

    Each split's AP of run r is averaged with the other splits' AP of run r (SPEC:
    "splits are averaged per run"); mean and ci95 are then taken over the runs.
    All summaries need the same number of runs, groups and IoU types.
    """
    summaries = list(summaries)
    if not summaries:
        raise ValueError("combine_splits: no summaries given")
    first = summaries[0]
    for s in summaries[1:]:
        if len(s["per_run"]) != len(first["per_run"]) or s["iou_types"] != first["iou_types"] \
                or set(s["groups"]) != set(first["groups"]):
            raise ValueError("combine_splits: summaries differ in runs, IoU types or groups")
    num_runs = len(first["per_run"])
    groups = {}
    for group in first["groups"]:
        groups[group] = {}
        for iou_type in first["iou_types"]:
            groups[group][iou_type] = {}
            for metric in METRICS:
                per_run = []
                for r in range(num_runs):
                    vals = [s["per_run"][r][group][iou_type][metric] for s in summaries]
                    per_run.append(None if any(v is None for v in vals)
                                   else float(np.mean(vals)))
                groups[group][iou_type][metric] = mean_and_ci(per_run)
    return {"iou_types": list(first["iou_types"]), "groups": groups,
            "splits": [s.get("settings", {}).get("split") for s in summaries]}


def _cell(stat):
    if stat["mean"] is None:
        return "-"
    return f"{100 * stat['mean']:.2f} ± {100 * stat['ci95']:.2f}"


def format_table(summary):
    """One text table of a summary: rows (group, IoU type), columns AP and AP50 in
    percent as "mean ± 1.96*std/sqrt(N)"."""
    header = ("classes", "type", "AP", "AP50")
    rows = [(group, iou_type, _cell(stats["AP"]), _cell(stats["AP50"]))
            for group, by_type in summary["groups"].items()
            for iou_type, stats in by_type.items()]
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(4)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def package_versions():
    """Versions of Python and the packages results depend on (None if not installed).

    Read from the installed distributions' metadata, so TensorFlow is not imported;
    ``keras_backend`` is the backend Keras runs (or will run) on.
    """
    out = {"python": platform.python_version()}
    for name in ("numpy", "pycocotools", "tensorflow", "keras", "jax", "torch",
                 "scikit-image", "scipy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    from mrcnn.backends import requested_backend
    out["keras_backend"] = requested_backend()
    from siamese_mrcnn import __version__
    out["siamese_mrcnn"] = __version__
    return out


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "to_dict"):
        return _jsonable(value.to_dict())
    return value


def write_report(path, summary, config, seeds, mode, versions=None):
    """Write one JSON report (atomically): summary, table, config, seeds, mode, versions.

    ``config`` may be a ``Config`` (stored via ``to_dict()``), a dict or None;
    ``mode`` an ``EvalMode`` or dict; ``versions`` defaults to
    :func:`package_versions`. Returns the report dict.
    """
    report = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "table": format_table(summary).splitlines(),
        "summary": summary,
        "config": config,
        "seeds": seeds,
        "mode": mode,
        "versions": package_versions() if versions is None else versions,
    }
    report = _jsonable(report)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1, sort_keys=False)
    os.replace(tmp, path)
    return report
