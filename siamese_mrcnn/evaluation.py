"""One-shot evaluation on COCO-format data (SPEC section 5).

Shape shorthand: ``H, W`` query image height and width in pixels (original image, not
resized), ``N`` detections of one query, ``Q`` categories queried in one image,
``S`` shots (references per category), ``D`` the reference side TARGET_MAX_DIM.

Protocol: for each image (of the first ``limit``) and each run, every evaluated
category present in the image (with a non-crowd instance; in faithful mode one
whose mask is non-empty after the query-style resize) is queried with a
reference drawn by :mod:`siamese_mrcnn.references` from a generator seeded by
(seed, run, COCO image id, COCO category id), so references do not depend on the
order of work, on sharding or on resuming. The detector gets all queries of one
image in one call (the shared-feature path)::

    detector(image uint8 [H, W, 3], references: Q lists of S uint8 [D, D, 3])
        -> Q dicts {"rois": int [N, 4] pixel (y1, x1, y2, x2), y2/x2 exclusive, in the
                    original image; "scores": float [N];
                    "masks": bool [H, W, N] or None for a box-only model}

Every output is labelled with the queried category; results of all images are
pooled per run and scored with COCOeval (:mod:`siamese_mrcnn.evaluation_results`).

Modes (:class:`EvalMode`): ``faithful`` reproduces the original evaluation's quirks;
``corrected`` fixes them (see the class). The mode is stored with the results.

Queries without a reference from another image. The corrected mode draws references
from images other than the query. When no other image holds a usable (non-crowd,
surviving the resize) instance of the category, as for a class present in a single
image, the reference of that (run, image, category) comes from the query image
itself, the faithful rule: a real instance is better evidence than none, and
skipping the query would count the class's instances there as missed. Each such
query is marked ``"same_image": true`` in its record, counted in the summary's
``same_image_references`` and warned about once per class. A category with no
usable instance in any image (only crowds, or instances lost in the resize) cannot
be queried at all: its queries are skipped, listed in the record's
``"unreferenced"`` and counted in ``unreferenced_queries`` (it has no ground truth
that COCOeval counts either, so no AP changes).

Partial results are a JSON Lines file: a header line with the settings, then one line
per finished (run, image). Each line is written and flushed whole, so an interrupted
evaluation resumes from the last complete line (a torn last line is discarded). The
settings identify what wrote the file: protocol (runs, shots, seed, mode, split and
classes, images), weights (path and SHA-1 of the file) and configuration; resuming or
merging with any of them different is refused, naming it (the weights by digest, the
configuration by attribute, except GPU_COUNT, IMAGES_PER_GPU and BATCH_SIZE, which
only change how many reference sets go through the heads at once).
Shard ``i`` of ``n`` evaluates the images at positions ``p`` with ``p % n == i`` of
the evaluated list; :func:`merge_partials` joins the shards' files and
:func:`summarize` scores them exactly as one process would.
"""

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from siamese_mrcnn.evaluation_results import (  # noqa: F401  (re-exported API)
    coco_ap, combine_splits, format_table, mean_and_ci, package_versions, score_runs,
    write_report)
from siamese_mrcnn.coco import encode_masks
from siamese_mrcnn.references import (NoReferenceError, classes_after_resize,
                                      sample_references)

logger = logging.getLogger(__name__)

PARTIAL_FORMAT = "siamese_mrcnn.evaluation.partial/1"


@dataclass(frozen=True)
class EvalMode:
    """How the evaluation treats the original protocol's quirks.

    query_absent_categories: also query the evaluated categories that are absent from
        the image (their detections are false positives), as a real one-shot user
        would; the original queried only categories present (False).
    allow_reference_from_query: the reference may be drawn from the query image
        itself (the original: True).
    subtract_reference_mean: references are mean-subtracted at test time as in
        training; the original did not (False). Applied by the detector
        (:func:`make_model_detector`), recorded here.
    min_confidence: detections with a lower score are dropped. None keeps the model's
        DETECTION_MIN_CONFIDENCE (0.7 in the original). The corrected mode uses 0.05
        so that AP integrates (almost) the whole precision-recall curve; build the
        model with DETECTION_MIN_CONFIDENCE <= this value.
    resampling: how queries, references and masks are resampled ("faithful": the
        original's scikit-image/SciPy calls; "corrected"): used for the reference
        draws here, and required of the model's RESAMPLING by
        :func:`make_model_detector`.
    presence: which categories an image "contains" when only present ones are
        queried: "resized" (the original: a non-crowd instance whose mask is
        non-empty after the query-style resize with this mode's resampling) or
        "annotations" (a non-crowd annotation).
    segm_areas: the detection areas segm scoring sorts into small/medium/large
        ("box": the original's, whose results carried boxes; "mask"). AP and AP50
        do not depend on it.
    """

    name: str
    query_absent_categories: bool
    allow_reference_from_query: bool
    subtract_reference_mean: bool
    min_confidence: float = None
    resampling: str = "corrected"
    presence: str = "annotations"
    segm_areas: str = "mask"

    @classmethod
    def faithful(cls):
        return cls("faithful", query_absent_categories=False, allow_reference_from_query=True,
                   subtract_reference_mean=False, min_confidence=None,
                   resampling="faithful", presence="resized", segm_areas="box")

    @classmethod
    def corrected(cls):
        return cls("corrected", query_absent_categories=True, allow_reference_from_query=False,
                   subtract_reference_mean=True, min_confidence=0.05)

    @classmethod
    def from_name(cls, name):
        if name == "faithful":
            return cls.faithful()
        if name == "corrected":
            return cls.corrected()
        raise ValueError(f"unknown evaluation mode {name!r}; valid: 'faithful', 'corrected'")

    def detection_min_confidence(self, config):
        """The DETECTION_MIN_CONFIDENCE a model should be built with for this mode."""
        return config.DETECTION_MIN_CONFIDENCE if self.min_confidence is None \
            else self.min_confidence

    def to_dict(self):
        return asdict(self)


def weights_fingerprint(path):
    """{"path": absolute path, "sha1": hex digest of the file's bytes} of a weight
    file: what a partial results file records of the model that wrote it."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"path": os.path.abspath(path), "sha1": digest.hexdigest()}


def make_model_detector(model, mode, weights_path=None):
    """Adapt a ``SiameseMaskRCNN`` in inference mode to the detector interface, via
    its shared-feature ``detect_multi`` and the mode's reference mean subtraction.

    Raises ValueError when the model's config contradicts the mode (its
    RESAMPLING, or a DETECTION_MIN_CONFIDENCE above the mode's cut-off).
    The detector's ``provenance`` ({"config": the model's ``config.to_dict()``, and
    with ``weights_path`` "weights": :func:`weights_fingerprint`}) is recorded in
    partial results files and checked when they are resumed or merged."""
    resampling = getattr(model.config, "RESAMPLING", "corrected")
    if resampling != mode.resampling:
        raise ValueError(f"mode {mode.name!r} resamples images and masks the "
                         f"{mode.resampling} way, but the model has "
                         f"RESAMPLING={resampling!r}; build it with "
                         f"RESAMPLING={mode.resampling!r}")
    if mode.min_confidence is not None \
            and model.config.DETECTION_MIN_CONFIDENCE > mode.min_confidence:
        raise ValueError(f"mode {mode.name!r} keeps detections down to score "
                         f"{mode.min_confidence}, but the model drops those below "
                         f"DETECTION_MIN_CONFIDENCE={model.config.DETECTION_MIN_CONFIDENCE}; "
                         f"build it with DETECTION_MIN_CONFIDENCE={mode.min_confidence}")

    def detector(image, references):
        outputs = model.detect_multi(image, references,
                                     subtract_reference_mean=mode.subtract_reference_mean)
        return [{"rois": o["rois"], "scores": o["scores"], "masks": o.get("masks")}
                for o in outputs]
    detector.provenance = {}
    if hasattr(model.config, "to_dict"):
        detector.provenance["config"] = model.config.to_dict()
    if weights_path is not None:
        detector.provenance["weights"] = weights_fingerprint(weights_path)
    return detector


# ------------------------------------------------------------------ results
def detections_to_coco(detection, image_id, category_id, image_shape, min_confidence=None):
    """COCO result dicts of one query's detections.

    Args:
        detection: {"rois" [N, 4] pixel (y1, x1, y2, x2), "scores" [N],
            "masks" bool [H, W, N] or None}.
        image_id, category_id: COCO ids the results get.
        image_shape: (H, W) of the original image; masks must have it.
        min_confidence: drop detections scoring below it (None: keep all).
    Returns a list of dicts: image_id, category_id, bbox [x, y, w, h] (floats, from the
    pixel box), score, and segmentation (RLE, str counts) when masks are given.
    """
    where = f"image {image_id}, category {category_id}"
    rois = np.asarray(detection.get("rois", np.zeros((0, 4))), dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(detection.get("scores", np.zeros(0)), dtype=np.float64).reshape(-1)
    masks = detection.get("masks")
    if len(scores) != len(rois):
        raise ValueError(f"{where}: detector gave {len(rois)} boxes and {len(scores)} scores")
    if masks is not None:
        masks = np.asarray(masks)
        if masks.ndim != 3 or masks.shape[:2] != tuple(image_shape) \
                or masks.shape[2] != len(rois):
            raise ValueError(f"{where}: masks must be bool [H, W, N] = "
                             f"[{image_shape[0]}, {image_shape[1]}, {len(rois)}], got "
                             f"{masks.shape}")
    keep = np.ones(len(scores), dtype=bool) if min_confidence is None \
        else scores >= min_confidence
    rles = encode_masks(masks[:, :, keep]) if masks is not None else []
    out = []
    for n, (box, score) in enumerate(zip(rois[keep], scores[keep])):
        y1, x1, y2, x2 = (float(v) for v in box)
        result = {"image_id": int(image_id), "category_id": int(category_id),
                  "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)}
        if masks is not None:
            result["segmentation"] = rles[n]
        out.append(result)
    return out


def reference_seed(seed, run, image_key, category_key):
    """The generator of one (run, image, category): independent of any work order."""
    return np.random.default_rng(np.random.SeedSequence(
        [int(seed), int(run), int(image_key), int(category_key)]))


# ------------------------------------------------------------------ partial results
@dataclass
class EvalPartial:
    """Detections of an evaluation (or one shard): ``settings`` (JSON dict) and
    ``records`` {(run, image index): {"results": [...], "references": [...]}}."""

    settings: dict
    records: dict = field(default_factory=dict)


def _settings_digest(coco_ids):
    return hashlib.sha1(json.dumps(coco_ids).encode("ascii")).hexdigest()


def _read_partial(path):
    """(header, records, byte length of the complete lines) of a partial file."""
    header, records, good = None, {}, 0
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # torn by an interruption mid-write
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                break
            if header is None:
                if line.get("format") != PARTIAL_FORMAT:
                    raise ValueError(f"{path}: not a partial evaluation file "
                                     f"(format {line.get('format')!r})")
                header = line
            else:
                records[(int(line["run"]), int(line["image"]))] = {
                    "results": line["results"], "references": line["references"]}
            good += len(raw)
    return header, records, good


def _append_line(path, obj):
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj, separators=(",", ":")) + "\n")
        f.flush()
        os.fsync(f.fileno())


# Configuration attributes that only change batching, not detections.
_BATCHING_ATTRIBUTES = ("GPU_COUNT", "IMAGES_PER_GPU", "BATCH_SIZE")


def _check_same(path, expected, found, ignore=(), labels=("file has", "this run has")):
    """Raise ValueError naming the first setting in which ``found`` (the file
    ``path``'s) and ``expected`` differ: protocol settings by key (the mode by
    name), then the weights by SHA-1, then the configuration by attribute.
    ``labels`` introduce the found and the expected value in the message."""
    theirs_label, mine_label = labels
    # The protocol first: another mode also explains a configuration difference
    # (its DETECTION_MIN_CONFIDENCE).
    for key in sorted(set(expected) | set(found), key=lambda k: (k in ("weights", "config"), k)):
        if key in ignore:
            continue
        mine, theirs = expected.get(key), found.get(key)
        if key == "weights":
            mine_sha, theirs_sha = ((w or {}).get("sha1") for w in (mine, theirs))
            if mine_sha != theirs_sha:
                raise ValueError(f"{path}: written with other weights: {theirs_label} "
                                 f"{_describe_weights(theirs)}, {mine_label} "
                                 f"{_describe_weights(mine)}")
        elif key == "config" and isinstance(mine, dict) and isinstance(theirs, dict):
            for name in sorted(set(mine) | set(theirs)):
                if name not in _BATCHING_ATTRIBUTES and mine.get(name) != theirs.get(name):
                    raise ValueError(f"{path}: written with another configuration; "
                                     f"config.{name}: {theirs_label} "
                                     f"{_short(theirs.get(name))}, {mine_label} "
                                     f"{_short(mine.get(name))}")
        elif key == "mode" and mine != theirs:
            raise ValueError(f"{path}: written in another mode; mode: {theirs_label} "
                             f"{_mode_name(theirs)}, {mine_label} {_mode_name(mine)}")
        elif mine != theirs:
            raise ValueError(f"{path}: written with different settings; {key!r}: "
                             f"{theirs_label} {_short(theirs)}, {mine_label} {_short(mine)}")


def _describe_weights(weights):
    if not weights:
        return "unrecorded weights (a file from before weights were recorded)"
    return f"{weights.get('path')} (sha1 {str(weights.get('sha1'))[:12]})"


def _mode_name(mode):
    return repr(mode.get("name")) if isinstance(mode, dict) else _short(mode)


def _short(value):
    text = json.dumps(value)
    return text if len(text) < 120 else text[:117] + "..."


def load_partial(path):
    """Read a partial results file (a shard's or a whole run's) as :class:`EvalPartial`."""
    header, records, _ = _read_partial(path)
    if header is None:
        raise ValueError(f"{path}: partial evaluation file has no complete header line")
    return EvalPartial(settings=header["settings"], records=records)


def merge_partials(paths):
    """Join the partial files of all shards of one evaluation into one :class:`EvalPartial`.

    Raises ValueError if the files disagree in settings, a shard is missing or
    repeated, or a shard has not finished all its (run, image) pairs.
    """
    partials = [(p, load_partial(p)) for p in paths]
    if not partials:
        raise ValueError("merge_partials: no files given")
    first_path, first = partials[0]
    num_shards = first.settings["num_shards"]
    shards = {}
    for path, partial in partials:
        _check_same(path, first.settings, partial.settings, ignore=("shard",),
                    labels=("it has", f"{first_path} has"))
        shard = partial.settings["shard"]
        if shard in shards:
            raise ValueError(f"merge_partials: shard {shard} given twice ({shards[shard]} "
                             f"and {path})")
        shards[shard] = path
    missing = sorted(set(range(num_shards)) - set(shards))
    if missing:
        raise ValueError(f"merge_partials: shard(s) {missing} of {num_shards} missing")
    settings = dict(first.settings, shard=0, num_shards=1)
    merged = EvalPartial(settings=settings)
    for path, partial in partials:
        todo = _pairs(partial.settings)
        absent = sorted(todo - set(partial.records))
        if absent:
            raise ValueError(f"merge_partials: {path} is incomplete: {len(absent)} "
                             f"(run, image) pairs missing, e.g. {absent[0]}; resume it first")
        merged.records.update({k: partial.records[k] for k in todo})
    return merged


def _shard_images(settings):
    images = settings["image_ids"]
    return [img for pos, img in enumerate(images)
            if pos % settings["num_shards"] == settings["shard"]]


def _pairs(settings):
    return {(run, img) for img in _shard_images(settings) for run in range(settings["runs"])}


# ------------------------------------------------------------------ the engine
def _class_groups(classes):
    """{group: ascending class ids} from a Split (``groups``) or a mapping."""
    groups = classes.groups if hasattr(classes, "groups") else dict(classes)
    groups = {str(g): sorted(int(c) for c in ids) for g, ids in groups.items() if len(ids)}
    if not groups:
        raise ValueError("no classes to evaluate: every class group is empty")
    return groups


def _present_classes(dataset, image_id, config, mode):
    if mode.presence == "resized":
        return set(classes_after_resize(dataset, image_id, config, mode.resampling))
    index = getattr(dataset, "image_category_index", None)
    if index:
        return {int(c) for c in index[image_id]}
    _, class_ids = dataset.load_mask(image_id)
    return {int(c) for c in np.asarray(class_ids) if c > 0}


def run_detections(dataset, detector, classes, config, runs=5, shots=1, mode=None, seed=0,
                   limit=None, shard=0, num_shards=1, partial_path=None, progress=True,
                   baseline=None, provenance=None):
    """Run the detector over (this shard of) the evaluation; returns :class:`EvalPartial`.

    See :func:`evaluate_one_shot` for the arguments. With ``partial_path`` every
    finished (run, image) is appended to that file at once, and pairs already in it
    are skipped, so calling again after an interruption resumes; a file written
    with other settings, weights or configuration is refused (ValueError naming
    the difference).
    """
    mode = EvalMode.faithful() if mode is None else mode
    groups = _class_groups(classes)
    for name, value in (("runs", runs), ("shots", shots), ("num_shards", num_shards)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(shard, (int, np.integer)) or not 0 <= shard < num_shards:
        raise ValueError(f"shard must be in 0..{num_shards - 1}, got {shard!r}")
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    known = set(range(1, dataset.num_classes))
    unknown = sorted({c for ids in groups.values() for c in ids} - known)
    if unknown:
        raise ValueError(f"class id(s) {unknown} are not classes of the dataset (1.."
                         f"{dataset.num_classes - 1})")

    image_ids = [int(i) for i in dataset.image_ids][:limit]
    coco_ids = [dataset.coco_image_id(i) for i in image_ids]
    settings = {"runs": int(runs), "shots": int(shots), "seed": int(seed),
                "mode": mode.to_dict(), "classes": groups,
                "split": getattr(classes, "name", None), "limit": limit,
                "image_ids": image_ids, "coco_image_ids_sha1": _settings_digest(coco_ids),
                "shard": int(shard), "num_shards": int(num_shards),
                "baseline": None if baseline is None else baseline.settings()}
    provenance = getattr(detector, "provenance", None) if provenance is None else provenance
    for key in ("weights", "config"):
        settings[key] = (provenance or {}).get(key)
    partial = EvalPartial(settings=settings)
    if partial_path is not None:
        header, good = None, 0
        if os.path.exists(partial_path):
            header, records, good = _read_partial(partial_path)
            if header is not None:
                _check_same(partial_path, settings, header["settings"])
                partial.records = records
        else:
            os.makedirs(os.path.dirname(os.path.abspath(partial_path)), exist_ok=True)
        if os.path.exists(partial_path) and good != os.path.getsize(partial_path):
            with open(partial_path, "r+b") as f:  # drop a line torn by an interruption
                f.truncate(good)
        if header is None:
            _append_line(partial_path, {"format": PARTIAL_FORMAT, "settings": settings})

    evaluated = sorted({c for ids in groups.values() for c in ids})
    my_images = _shard_images(settings)
    warned = set()
    bar = tqdm(total=len(my_images) * runs, initial=len(partial.records), disable=not progress,
               desc=f"one-shot eval (shard {shard + 1}/{num_shards})", unit="query image")
    try:
        for image_id in my_images:
            todo = [r for r in range(runs) if (r, image_id) not in partial.records]
            if not todo:
                continue
            present = _present_classes(dataset, image_id, config, mode)
            queried = evaluated if mode.query_absent_categories \
                else [c for c in evaluated if c in present]
            image = dataset.load_image(image_id) if queried else None
            for run in todo:
                record = _evaluate_image(dataset, detector, config, image, image_id, queried,
                                         run, shots, mode, seed, baseline, warned)
                partial.records[(run, image_id)] = record
                if partial_path is not None:
                    _append_line(partial_path, dict(run=run, image=image_id, **record))
                bar.update(1)
    finally:
        bar.close()
    return partial


def _evaluate_image(dataset, detector, config, image, image_id, queried, run, shots, mode,
                    seed, baseline=None, warned=None):
    """Detections (COCO results) and reference provenance of one (run, image).

    ``warned``: a set shared over the evaluation, so each class's reference
    fallback is warned about once."""
    warned = set() if warned is None else warned
    if not queried:
        return {"results": [], "references": []}
    coco_image_id = dataset.coco_image_id(image_id)
    exclude = None if mode.allow_reference_from_query else image_id
    reference_sets, provenance, referenced, unreferenced = [], [], [], []
    for class_id in queried:
        category_id = dataset.coco_category_id(class_id)
        entry = {"class_id": int(class_id)}
        try:
            refs, sources = sample_references(
                dataset, class_id, reference_seed(seed, run, coco_image_id, category_id),
                config, shots, exclude_image=exclude, resampling=mode.resampling)
        except NoReferenceError:
            try:  # the query image itself (module docstring); a fresh, seeded draw
                refs, sources = sample_references(
                    dataset, class_id, reference_seed(seed, run, coco_image_id, category_id),
                    config, shots, resampling=mode.resampling)
            except NoReferenceError:
                _warn_once(warned, ("unreferenced", class_id),
                           "no image holds a usable non-crowd instance of %s: its queries "
                           "are skipped (counted as unreferenced_queries)",
                           _class_text(dataset, class_id))
                unreferenced.append(int(class_id))
                continue
            _warn_once(warned, ("same_image", class_id),
                       "%s mode: no image other than the query holds a usable instance of "
                       "%s (e.g. COCO image %d): its reference there comes from the query "
                       "image itself (counted as same_image_references)", mode.name,
                       _class_text(dataset, class_id), coco_image_id)
            entry["same_image"] = True
        entry["sources"] = [s.to_dict() for s in sources]
        reference_sets.append(refs)
        provenance.append(entry)
        referenced.append(class_id)
    if baseline is not None and referenced:
        reference_sets, provenance = baseline.replace_references(
            dataset, config, mode, image, image_id, referenced, run, shots, reference_sets,
            provenance)
    outputs = detector(image, reference_sets) if referenced else []
    if len(outputs) != len(referenced):
        raise ValueError(f"image {coco_image_id}: the detector returned {len(outputs)} "
                         f"results for {len(referenced)} queried categories")
    if baseline is not None and referenced:
        outputs = baseline.replace_detections(dataset, config, mode, image, image_id,
                                              referenced, run, outputs)
    results = []
    for class_id, output in zip(referenced, outputs):
        results += detections_to_coco(output, coco_image_id, dataset.coco_category_id(class_id),
                                      image.shape[:2], mode.min_confidence)
    record = {"results": results, "references": provenance}
    if unreferenced:
        record["unreferenced"] = unreferenced
    return record


def _warn_once(warned, key, message, *args):
    if key not in warned:
        warned.add(key)
        logger.warning(message, *args)


def _class_text(dataset, class_id):
    return f"class {class_id} ({dataset.class_names[class_id]!r})"


def summarize(dataset, partial):
    """Score a complete (merged or single-process) :class:`EvalPartial`.

    Returns the summary dict of :func:`~siamese_mrcnn.evaluation_results.score_runs`
    with "settings" (mode, runs, shots, seed, classes, limit, image count) added.
    """
    settings = partial.settings
    if settings["num_shards"] != 1:
        raise ValueError(f"summarize needs all shards: merge the {settings['num_shards']} "
                         f"shard files with merge_partials first")
    absent = sorted(_pairs(settings) - set(partial.records))
    if absent:
        raise ValueError(f"the evaluation is incomplete: {len(absent)} (run, image) pairs "
                         f"missing, e.g. {absent[0]}")
    image_ids = settings["image_ids"]
    coco_ids = [dataset.coco_image_id(i) for i in image_ids]
    if _settings_digest(coco_ids) != settings["coco_image_ids_sha1"]:
        raise ValueError("the results were computed on a different dataset (its image ids "
                         "differ from those recorded)")
    groups = {g: [dataset.coco_category_id(c) for c in ids]
              for g, ids in settings["classes"].items()}
    names = {dataset.coco_category_id(c): dataset.class_names[c]
             for ids in settings["classes"].values() for c in ids}
    # Pooled in image order, so shards merged and one process give identical input.
    run_results = [[r for img in image_ids for r in partial.records[(run, img)]["results"]]
                   for run in range(settings["runs"])]
    segm_areas = settings["mode"].get("segm_areas", "mask")
    summary = score_runs(dataset.coco, run_results, coco_ids, groups, names, segm_areas)
    summary["settings"] = {k: settings[k] for k in ("runs", "shots", "seed", "mode", "split",
                                                    "classes", "limit")}
    summary["settings"]["baseline"] = settings.get("baseline")
    summary["settings"]["num_images"] = len(image_ids)
    summary["settings"]["weights_sha1"] = (settings.get("weights") or {}).get("sha1")
    records = [partial.records[(run, img)] for run in range(settings["runs"])
               for img in image_ids]
    summary["settings"]["queries"] = sum(len(r["references"]) + len(r.get("unreferenced", ()))
                                         for r in records)
    summary["settings"]["same_image_references"] = sum(
        bool(ref.get("same_image")) for r in records for ref in r["references"])
    summary["settings"]["unreferenced_queries"] = sum(len(r.get("unreferenced", ()))
                                                      for r in records)
    return summary


def evaluate_one_shot(dataset, detector, classes, config, runs=5, shots=1, mode=None, seed=0,
                      limit=None, shard=0, num_shards=1, partial_path=None, progress=True,
                      baseline=None, provenance=None):
    """Evaluate a one-shot detector on a prepared ``CocoDataset`` (SPEC section 5).

    Args:
        dataset: prepared ``CocoDataset`` (ground truth, images and reference pool).
        detector: callable, see the module docstring.
        classes: a ``splits.Split`` (groups "seen" / "unseen") or a mapping
            {group name: contiguous class ids}; their union is evaluated.
        config: reference sampling settings (IMAGE_* query resize, TARGET_MIN_DIM,
            TARGET_MAX_DIM).
        runs: independent reference draws (the paper: 5). shots: references per query.
        mode: :class:`EvalMode` (default faithful). seed: base seed of all draws.
        limit: evaluate only the first ``limit`` images.
        shard, num_shards: evaluate only images at positions p with p % num_shards == shard.
        partial_path: JSON Lines file for resumable partial results.
        progress: show a tqdm progress bar.
        baseline: None, or a :class:`siamese_mrcnn.baselines.Baseline` that replaces
            the references or the detections of every query (the paper's
            baselines); recorded in the settings.
        provenance: {"weights": {"path", "sha1"}, "config": dict} of the model, recorded
            in the partial file and compared on resume and merge; default the
            detector's ``provenance`` attribute (set by :func:`make_model_detector`).
    Returns:
        with num_shards == 1 the summary (see :func:`summarize`); with several shards
        this shard's :class:`EvalPartial` (score with ``summarize(dataset,
        merge_partials(paths))`` once every shard is done).
    """
    partial = run_detections(dataset, detector, classes, config, runs=runs, shots=shots,
                             mode=mode, seed=seed, limit=limit, shard=shard,
                             num_shards=num_shards, partial_path=partial_path,
                             progress=progress, baseline=baseline, provenance=provenance)
    if num_shards > 1:
        return partial
    return summarize(dataset, partial)
