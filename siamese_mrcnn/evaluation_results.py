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

Metrics (:data:`COCO_METRICS`) are those of ``COCOeval.summarize`` for bbox and segm,
each averaged over the evaluated categories only: AP (IoU 0.50:0.95), AP50, AP75,
APs / APm / APl (small, medium, large areas), AR1 / AR10 / AR100 (recall with at most
1, 10, 100 detections per image) and ARs / ARm / ARl. The paper reports AP and AP50
(:data:`METRICS`); :func:`combine_reports` and :func:`format_paper_table` give its
table from the four splits' reports.
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

from mrcnn.files import write_json

IOU_TYPES = ("bbox", "segm")
METRICS = ("AP", "AP50")
# name -> (precision or recall, IoU threshold or None for 0.50:0.95, area, max dets)
_COCO_SUMMARY = {
    "AP": ("precision", None, "all", 100), "AP50": ("precision", 0.5, "all", 100),
    "AP75": ("precision", 0.75, "all", 100), "APs": ("precision", None, "small", 100),
    "APm": ("precision", None, "medium", 100), "APl": ("precision", None, "large", 100),
    "AR1": ("recall", None, "all", 1), "AR10": ("recall", None, "all", 10),
    "AR100": ("recall", None, "all", 100), "ARs": ("recall", None, "small", 100),
    "ARm": ("recall", None, "medium", 100), "ARl": ("recall", None, "large", 100),
}
COCO_METRICS = tuple(_COCO_SUMMARY)
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


def results_for_iou_type(results, iou_type, segm_areas="mask"):
    """The fields COCOeval reads for ``iou_type``: boxes only for "bbox"; masks for
    "segm", without boxes (pycocotools then takes detection areas from the masks)
    unless ``segm_areas="box"``: the original passed boxes too, so its segm area
    ranges (APs/m/l, ARs/m/l) sorted detections by box area."""
    if iou_type == "bbox":
        return [{k: r[k] for k in ("image_id", "category_id", "bbox", "score")}
                for r in results]
    if iou_type == "segm":
        missing = [i for i, r in enumerate(results) if "segmentation" not in r]
        if missing:
            raise ValueError(f"segm evaluation needs masks: {len(missing)} result(s) have no "
                             f"'segmentation' (first at position {missing[0]})")
        if segm_areas not in ("mask", "box"):
            raise ValueError(f"segm_areas must be 'mask' or 'box', got {segm_areas!r}")
        keys = ("image_id", "category_id", "segmentation", "score") + (
            ("bbox",) if segm_areas == "box" else ())
        return [{k: r[k] for k in keys} for r in results]
    raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")


def _mean_valid(values):
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else None


def coco_ap(coco_gt, results, iou_type, image_ids, cat_ids, segm_areas="mask"):
    """COCO summary metrics of ``results`` over the given images, averaged over
    ``cat_ids`` only.

    Runs pycocotools' COCOeval with ``params.imgIds = image_ids`` and
    ``params.catIds = cat_ids`` (COCO ids) and averages the entries > -1 of
    ``precision`` [T, R, K, A, M] / ``recall`` [T, K, A, M] exactly as
    ``COCOeval.summarize`` does for its twelve numbers (:data:`COCO_METRICS`).

    Returns:
        {metric: float or None for each of COCO_METRICS, "per_category": {cat_id:
        {"AP", "AP50"}}}; None where no evaluated image has ground truth of the
        category (group), or of that area range. ``segm_areas``: see
        :func:`results_for_iou_type`.
    """
    image_ids = sorted({int(i) for i in image_ids})
    cat_ids = sorted({int(c) for c in cat_ids})
    if not cat_ids:
        raise ValueError("coco_ap: no category ids to evaluate")
    dt = load_results(coco_gt, results_for_iou_type(results, iou_type, segm_areas))
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
    at_50 = _threshold_index(params, 0.5)
    per_category = {
        cat: {"AP": _mean_valid(precision[:, :, k]), "AP50": _mean_valid(precision[at_50, :, k])}
        for k, cat in enumerate(params.catIds)}
    out = {}
    for name, (kind, threshold, area_label, dets) in _COCO_SUMMARY.items():
        values = evaluator.eval[kind]  # precision [T, R, K, A, M], recall [T, K, A, M]
        values = values[..., params.areaRngLbl.index(area_label), params.maxDets.index(dets)]
        if threshold is not None:
            values = values[_threshold_index(params, threshold)]
        out[name] = _mean_valid(values)
    out["per_category"] = per_category
    return out


def _threshold_index(params, threshold):
    return int(np.flatnonzero(np.isclose(params.iouThrs, threshold))[0])


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


def score_runs(coco_gt, run_results, image_ids, groups, category_names=None,
               segm_areas="mask"):
    """Score N runs of pooled results per class group and IoU type.

    Args:
        coco_gt: the ground truth ``COCO``.
        run_results: list over runs of lists of COCO result dicts.
        image_ids: COCO image ids evaluated.
        groups: {group name: COCO category ids}, e.g. seen and unseen.
        category_names: optional {category id: name} for the per-category tables.
        segm_areas: "mask" or "box" (the original's), see :func:`results_for_iou_type`.
    Returns:
        {"iou_types": [...], "per_run": [{group: {iou_type: coco_ap-dict}}],
        "groups": {group: {iou_type: {metric: mean_and_ci}}}} for each of
        :data:`COCO_METRICS`.
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
                scores = coco_ap(coco_gt, results, iou_type, image_ids, cat_ids, segm_areas)
                scores["per_category"] = {names.get(c, str(c)): v
                                          for c, v in scores["per_category"].items()}
                run[group][iou_type] = scores
        per_run.append(run)
    aggregated = {
        group: {iou_type: {m: mean_and_ci([run[group][iou_type][m] for run in per_run])
                           for m in COCO_METRICS}
                for iou_type in iou_types}
        for group in groups}
    return {"iou_types": iou_types, "per_run": per_run, "groups": aggregated}


def combine_splits(summaries):
    """Average several summaries (e.g. the 4 splits) run by run, then over runs.

    Each split's AP of run r is averaged with the other splits' AP of run r (SPEC:
    "splits are averaged per run"); mean and ci95 are then taken over the runs. The
    same for every metric the summaries share. All summaries need the same number
    of runs, groups and IoU types.
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
    # Every metric all runs of all summaries carry (reports before the full COCO
    # summary hold AP and AP50 only).
    metrics = [m for m in COCO_METRICS
               if all(m in s["per_run"][r][g][t] for s in summaries for r in range(num_runs)
                      for g in first["groups"] for t in first["iou_types"])]
    groups = {}
    for group in first["groups"]:
        groups[group] = {}
        for iou_type in first["iou_types"]:
            groups[group][iou_type] = {}
            for metric in metrics:
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


def _text_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def format_table(summary, metrics=METRICS):
    """One text table of a summary: rows (group, IoU type), a column per metric (AP
    and AP50 by default; :data:`COCO_METRICS` for the full COCO summary) in percent
    as "mean ± 1.96*std/sqrt(N)"; "-" where a metric is missing or undefined."""
    header = ("classes", "type") + tuple(metrics)
    missing = {"mean": None, "ci95": None}
    rows = [(group, iou_type) + tuple(_cell(stats.get(m, missing)) for m in metrics)
            for group, by_type in summary["groups"].items()
            for iou_type, stats in by_type.items()]
    return _text_table(header, rows)


def format_paper_table(summary):
    """The paper's layout: a row per class group, columns det AP, det AP50, segm AP,
    segm AP50 (percent, "mean ± 1.96*std/sqrt(N)")."""
    columns = [(t, m) for t in IOU_TYPES for m in METRICS]
    names = {"bbox": "det", "segm": "segm"}
    header = ("classes",) + tuple(f"{names[t]} {m}" for t, m in columns)
    missing = {"mean": None, "ci95": None}
    rows = [(group,) + tuple(_cell(by_type.get(t, {}).get(m, missing)) for t, m in columns)
            for group, by_type in summary["groups"].items()]
    return _text_table(header, rows)


def combine_reports(reports, paths=None):
    """The paper's numbers from the per-split reports of one setting.

    ``reports``: report dicts as :func:`write_report` writes them (one per split,
    e.g. ``results_split1.json`` .. ``results_split4.json``). They must agree in
    evaluation mode, shots, runs, baseline and class groups, and be of different
    splits. Returns :func:`combine_splits` of their summaries with "settings"
    (mode, shots, runs, baseline, splits, weights, files) added.
    Raises ValueError naming the disagreeing file and setting.
    """
    reports = list(reports)
    paths = list(paths) if paths is not None else [f"report {i}" for i in range(len(reports))]
    if not reports:
        raise ValueError("combine_reports: no reports given")
    settings = [r.get("summary", {}).get("settings", {}) for r in reports]
    for key in ("mode", "shots", "runs", "baseline"):
        first = settings[0].get(key)
        for path, setting in zip(paths[1:], settings[1:]):
            if setting.get(key) != first:
                raise ValueError(f"{path}: {key} {_short_json(setting.get(key))} differs from "
                                 f"{paths[0]}'s {_short_json(first)}")
    splits = [s.get("split") for s in settings]
    repeated = sorted({str(v) for v in splits if splits.count(v) > 1})
    if repeated:
        raise ValueError(f"combine_reports: split(s) {repeated} given more than once")
    try:
        combined = combine_splits([r["summary"] for r in reports])
    except (KeyError, TypeError):
        raise ValueError("combine_reports: a file is not an evaluation report (no summary "
                         "with per-run results)") from None
    first = settings[0]
    combined["settings"] = {"mode": first.get("mode"), "shots": first.get("shots"),
                            "runs": first.get("runs"), "baseline": first.get("baseline"),
                            "splits": splits, "weights": [s.get("weights") for s in settings],
                            "files": paths}
    return combined


def _short_json(value):
    text = json.dumps(value)
    return text if len(text) < 80 else text[:77] + "..."


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


def write_report(path, summary, config, seeds, mode, versions=None, extra=None):
    """Write one JSON report (atomically): summary, tables, config, seeds, mode, versions.

    ``config`` may be a ``Config`` (stored via ``to_dict()``), a dict or None;
    ``mode`` an ``EvalMode`` or dict; ``versions`` defaults to
    :func:`package_versions`; ``extra`` adds top-level entries. "table" holds AP and
    AP50, "coco_table" every metric of :data:`COCO_METRICS`. Returns the report dict.
    """
    report = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "table": format_table(summary).splitlines(),
        "coco_table": format_table(summary, COCO_METRICS).splitlines(),
        **(extra or {}),
        "summary": summary,
        "config": config,
        "seeds": seeds,
        "mode": mode,
        "versions": package_versions() if versions is None else versions,
    }
    report = _jsonable(report)
    write_json(path, report, indent=1, sort_keys=False, make_dirs=True)
    return report
