#!/usr/bin/env python
"""Wall time and peak memory of Mask R-CNN and Siamese Mask R-CNN beside a bare ResNet.

    python scripts/benchmark.py [--size 1024] [--repeats 5] [--warmup 1]
        [--only mrcnn|siamese|all] [--backbone resnet50] [--profile] [--json out.json]

Every row is timed against a floor: a bare ResNet forward pass (C2..C5, batch 1) on
the same molded image, in the same process. Floor and row calls alternate (floor,
row, floor, row, ...), so a change of load from other processes during a row moves
both; the "x floor" ratio divides the row's median by the median of the floor calls
interleaved with it.

Rows (``--only`` picks the groups):

- mrcnn: ``MaskRCNN.detect`` on one image (mold + graph + unmold), 1000 proposals,
  DETECTION_MIN_CONFIDENCE 0 so DETECTION_MAX_INSTANCES (100) detections get masks;
  the graph alone (``run_graph_on_batch`` on molded inputs); one training step
  (``train_on_batch``, batch 1, compiled as ``MaskRCNN.train`` compiles) on a
  shapes-dataset batch from ``DataGenerator``.
- siamese: ``SiameseMaskRCNN.detect`` with one reference; ``detect_multi`` with 3
  reference sets (query backbone and FPN once); 3 separate ``detect`` calls, with
  the shared path's speed-up over them.
- ``--profile`` adds the stages of the Mask R-CNN graph (prefix sub-models ending at
  the FPN, the RPN, the proposals and the detections; the stage cost is the
  difference of consecutive medians), ``mold_inputs`` and the numpy unmolding.

Weights are random (Keras initialisers): timings do not depend on them, except
through the number of detections that get unmolded. So that all
DETECTION_MAX_INSTANCES slots hold a detection, the classifier's background logit is
pinned low (:func:`favour_objects`); the count is printed beside each row.

Memory: peak resident set size (Linux VmHWM, reset through /proc/self/clear_refs
before every timed call) and its rise over the RSS just before the call; where the
reset is not allowed, the process peak so far (``ru_maxrss``), labelled as such.
Memory freed by earlier rows and kept by the allocator is reused without raising
RSS, so a rise can understate a row's own need.
"""

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # samples/ is not an installed package

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as mrcnn does; see lib/mrcnn/__init__.py

import numpy as np  # noqa: E402

logger = logging.getLogger("benchmark")

GROUPS = ("mrcnn", "siamese")


# ====================================================================== machine, memory
def machine_info():
    """Dict describing the machine: CPU model, cores, RAM, load, TF version, devices."""
    import tensorflow as tf
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            models = [line.split(":", 1)[1].strip() for line in f
                      if line.startswith("model name")]
        cpu = models[0] if models else cpu
    except OSError:
        pass
    ram_gib = None
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal"))
        ram_gib = round(kib / 1024.0 / 1024.0, 1)
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = tf.config.list_physical_devices("GPU")
    return {"cpu": cpu, "cores": cores, "ram_gib": ram_gib,
            "load_average_1min": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "device": ", ".join(d.name for d in gpus) if gpus else "CPU only"}


def _status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # kB -> MiB
    raise KeyError(field)


class PeakMemory:
    """Peak resident memory (MiB) of one call of a function.

    ``mode`` is "call" when the kernel's high-water mark can be reset (Linux
    /proc/self/clear_refs), so ``peak`` is the peak during the call; otherwise
    "process", and ``peak`` is the process's peak so far (ru_maxrss).
    """

    def __init__(self):
        try:
            self._reset()
            _status_mib("VmHWM")
            self.mode = "call"
        except (OSError, KeyError):
            self.mode = "process"

    @staticmethod
    def _reset():
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # 5: reset the peak RSS (VmHWM) to the current RSS

    def measure(self, fn):
        """Run ``fn()``; return (result, peak MiB, rise of the peak over RSS before)."""
        if self.mode == "call":
            before = _status_mib("VmRSS")
            self._reset()
            result = fn()
            peak = _status_mib("VmHWM")
            return result, peak, peak - before
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        result = fn()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return result, peak, peak - before


# ====================================================================== timing
def _timed(fn):
    """(result, wall seconds, process CPU seconds over all threads) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def time_row(fn, floor_fn, repeats, warmup, memory):
    """Time ``fn`` ``repeats`` times, each right after one ``floor_fn`` call.

    Wall time is what a user waits; process CPU time (all threads) is the work done
    and hardly moves when other processes load the machine, so its ratio to the
    floor's is the steadier comparison on a shared machine. The first of ``warmup``
    calls (tracing) is reported as ``first_s``.

    Returns a dict: times, cpu_times, floor_times, floor_cpu_times (seconds);
    median_s, min_s, cpu_median_s; floor_median_s, floor_cpu_median_s; ratio
    (median_s / floor_median_s), cpu_ratio (the same for CPU time); first_s;
    peak_mib, rise_mib (maxima over the timed calls); ``result`` (the last return
    value of ``fn``).
    """
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}")
    first_s, result = None, None
    for i in range(max(0, warmup)):
        result, wall, _ = _timed(fn)
        if i == 0:
            first_s = wall
    times, cpu_times, floor_times, floor_cpu_times, peaks, rises = [], [], [], [], [], []
    for _ in range(repeats):
        if floor_fn is not None:
            _, wall, cpu = _timed(floor_fn)
            floor_times.append(wall)
            floor_cpu_times.append(cpu)
        (result, peak, rise), wall, cpu = _timed(lambda: memory.measure(fn))
        times.append(wall)
        cpu_times.append(cpu)
        peaks.append(peak)
        rises.append(rise)
    row = {"times": times, "cpu_times": cpu_times, "floor_times": floor_times,
           "floor_cpu_times": floor_cpu_times, "first_s": first_s,
           "peak_mib": max(peaks), "rise_mib": max(rises), "result": result}
    summarise(row)
    return row


def summarise(row):
    """Fill a row's medians, minimum and floor ratios from its time lists (in place)."""
    median = statistics.median(row["times"])
    cpu_median = statistics.median(row["cpu_times"])
    floor = statistics.median(row["floor_times"]) if row["floor_times"] else None
    floor_cpu = statistics.median(row["floor_cpu_times"]) if row["floor_cpu_times"] else None
    row.update(median_s=median, min_s=min(row["times"]), cpu_median_s=cpu_median,
               floor_median_s=floor, floor_cpu_median_s=floor_cpu,
               ratio=median / floor if floor else None,
               cpu_ratio=cpu_median / floor_cpu if floor_cpu else None)
    return row


# ====================================================================== models
# --tiny: narrow heads and few ROIs, so the whole script runs in seconds (smoke tests).
TINY_OVERRIDES = {
    "TOP_DOWN_PYRAMID_SIZE": 32, "FPN_FEATUREMAPS": 32, "FPN_CLASSIF_FC_LAYERS_SIZE": 32,
    "MASK_HEAD_CONV_SIZE": 16, "RPN_ANCHOR_SCALES": (8, 16, 32, 64, 128),
    "PRE_NMS_LIMIT": 512, "POST_NMS_ROIS_TRAINING": 64, "POST_NMS_ROIS_INFERENCE": 32,
    "RPN_TRAIN_ANCHORS_PER_IMAGE": 64, "TRAIN_ROIS_PER_IMAGE": 16, "MAX_GT_INSTANCES": 5,
    "DETECTION_MAX_INSTANCES": 8, "MINI_MASK_SHAPE": (14, 14),
}


def _configured(config_cls, args):
    if args.tiny:
        config_cls = type(config_cls.__name__, (config_cls,), dict(TINY_OVERRIDES))
    return config_cls()


def mrcnn_config(args):
    """Matterport's COCO layout (81 classes) at ``--size``, batch 1, all 100
    detections kept (DETECTION_MIN_CONFIDENCE 0)."""
    from mrcnn.config import Config

    class BenchmarkConfig(Config):
        NAME = "benchmark"
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1
        NUM_CLASSES = 81
        BACKBONE = args.backbone
        IMAGE_MIN_DIM = args.size
        IMAGE_MAX_DIM = args.size
        POST_NMS_ROIS_INFERENCE = args.proposals
        DETECTION_MIN_CONFIDENCE = 0.0
        DETECTION_MAX_INSTANCES = 100
    return _configured(BenchmarkConfig, args)


def siamese_config(args, references):
    """The paper's Large configuration at ``--size`` with ``references`` reference
    sets per ``detect_multi`` head call (BATCH_SIZE), DETECTION_MIN_CONFIDENCE 0."""
    from siamese_mrcnn.config import LargeConfig

    class BenchmarkSiameseConfig(LargeConfig):
        NAME = "benchmark_siamese"
        GPU_COUNT = 1
        IMAGES_PER_GPU = references
        BACKBONE = args.backbone
        IMAGE_MIN_DIM = args.size
        IMAGE_MAX_DIM = args.size
        TARGET_MAX_DIM = args.reference_size
        TARGET_MIN_DIM = min(150, args.reference_size)
        POST_NMS_ROIS_INFERENCE = args.proposals
        DETECTION_MIN_CONFIDENCE = 0.0
        DETECTION_MAX_INSTANCES = 100
    return _configured(BenchmarkSiameseConfig, args)


def make_floor(args, molded):
    """Bare ResNet (C2..C5) forward on ``molded`` [1, H, W, 3]; returns a callable."""
    import tensorflow as tf

    from mrcnn.layers.backbone import build_resnet_model
    model = build_resnet_model(list(molded.shape[1:]), args.backbone, name="floor_resnet")
    forward = tf.function(lambda x: model(x, training=False))
    image = tf.convert_to_tensor(molded)

    def run():
        return [c.numpy() for c in forward(image)]
    return run


def random_image(size, seed):
    """A shapes-dataset image (uint8 [size, size, 3]): real edges for the detector."""
    from samples.shapes.shapes import ShapesDataset
    dataset = ShapesDataset()
    dataset.load_shapes(1, size, size, seed=seed)
    dataset.prepare()
    return dataset.load_image(0)


def favour_objects(keras_model):
    """Pin the background logit of the classifier to -1e30 (random-init weights).

    The benchmark wants every one of the DETECTION_MAX_INSTANCES slots to be a real
    detection with a mask that is unmolded; untrained weights would otherwise often
    call most ROIs background (2-class Siamese heads) and leave slots empty. The
    graph's cost does not change: the mask head always runs on all slots.
    """
    layer = keras_model.get_layer("mrcnn_class_logits")
    kernel, bias = layer.get_weights()
    kernel[:, 0] = 0.0
    bias[0] = -1e30
    layer.set_weights([kernel, bias])


def detection_note(result, expected):
    n = len(result["class_ids"])
    masks = result["masks"].shape[-1]
    note = f"{n} detections, {masks} masks"
    if n < expected:
        note += f" (fewer than {expected})"
    return note


def prefix_model(keras_model, layer_names):
    """Sub-model of ``keras_model`` from its inputs to the named layers' outputs."""
    import keras
    outputs = [keras_model.get_layer(name).output for name in layer_names]
    return keras.Model(keras_model.input, outputs)


def mrcnn_inference_rows(args, floor_fn, add_row, image, tmpdir):
    """detect, graph only and (``--profile``) the graph's stages and numpy steps."""
    import tensorflow as tf

    from mrcnn.model import MaskRCNN
    config = mrcnn_config(args)
    model = MaskRCNN("inference", config, tmpdir)
    favour_objects(model.keras_model)
    row = add_row("MaskRCNN detect (mold+graph+unmold)",
                  lambda: model.detect([image])[0], floor_fn)
    row["note"] = detection_note(row["result"], config.DETECTION_MAX_INSTANCES)
    molded, metas, _ = model.mold_inputs([image])
    inputs = {"input_image": molded, "input_image_meta": metas}
    add_row("MaskRCNN graph only", lambda: model.run_graph_on_batch(inputs), floor_fn)
    if not args.profile:
        return
    # Each prefix runs the graph up to the named layers; a stage's cost is the
    # difference between consecutive prefixes.
    stages = [("  stage: backbone+FPN", ["fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5", "fpn_p6"]),
              ("  stage: ... +RPN heads", ["rpn_class", "rpn_bbox"]),
              ("  stage: ... +proposals", ["ROI"]),
              ("  stage: ... +classifier+detection", ["mrcnn_detection"])]
    tensors = {k: tf.convert_to_tensor(v) for k, v in inputs.items()}
    for label, names in stages:
        sub = prefix_model(model.keras_model, names)
        fn = tf.function(lambda x, sub=sub: sub(x, training=False))
        add_row(label, lambda fn=fn: [t.numpy() for t in tf.nest.flatten(fn(tensors))],
                floor_fn)
    outputs = model.run_graph_on_batch(inputs)
    meta = metas[0]
    add_row("  numpy: mold_inputs", lambda: model.mold_inputs([image]), floor_fn)
    add_row("  numpy: unmold_detections", lambda: model.unmold_detections(
        outputs["detections"][0], outputs["mrcnn_mask"][0], meta[1:4].astype(int),
        meta[4:7].astype(int), meta[7:11]), floor_fn)


def mrcnn_train_row(args, floor_fn, add_row, tmpdir):
    """One ``train_on_batch`` (batch 1) on a shapes batch, compiled as ``train`` does."""
    import keras

    from mrcnn.data import DataGenerator
    from mrcnn.model import MaskRCNN
    from mrcnn.training import resolve_layer_regex, set_trainable
    from samples.shapes.shapes import ShapesDataset
    config = mrcnn_config(args)
    keras_model = MaskRCNN("training", config, tmpdir).keras_model
    dataset = ShapesDataset()
    dataset.load_shapes(4, args.size, args.size, seed=1)
    dataset.prepare()
    batch = DataGenerator(dataset, config, shuffle=False, seed=0)[0]
    set_trainable(keras_model, resolve_layer_regex("all"))
    keras_model.compile(optimizer=keras.optimizers.SGD(
        learning_rate=config.LEARNING_RATE, momentum=config.LEARNING_MOMENTUM,
        global_clipnorm=config.GRADIENT_CLIP_NORM), jit_compile=False)
    row = add_row("MaskRCNN train step (batch 1)",
                  lambda: keras_model.train_on_batch(batch, return_dict=True), floor_fn)
    loss = float(row["result"]["loss"])
    row["note"] = f"loss {loss:.3f}" + ("" if np.isfinite(loss) else " (not finite)")


def siamese_rows(args, floor_fn, add_row, image, tmpdir):
    """1 reference; 3 reference sets through detect_multi and as 3 detect calls."""
    import tensorflow as tf

    from siamese_mrcnn.model import SiameseMaskRCNN
    references = 3
    config = siamese_config(args, references)
    model = SiameseMaskRCNN("inference", config, tmpdir)
    favour_objects(model.keras_model)
    rng = np.random.default_rng(0)
    side = min(args.reference_size, args.size)
    crops = []
    for _ in range(references):
        y, x = rng.integers(0, args.size - side + 1, size=2)
        crops.append(image[y:y + side, x:x + side].copy())
    expected = config.DETECTION_MAX_INSTANCES
    row = add_row("Siamese detect, 1 reference",
                  lambda: model.detect([crops[0]], [image])[0], floor_fn)
    row["note"] = detection_note(row["result"], expected)
    shared = add_row(f"Siamese detect_multi, {references} refs (shared)",
                     lambda: model.detect_multi(image, crops), floor_fn)
    separate = add_row(f"Siamese {references} separate detect calls",
                       lambda: [model.detect([c], [image])[0] for c in crops], floor_fn)
    shared["speedup"] = separate["median_s"] / shared["median_s"]
    shared["cpu_speedup"] = separate["cpu_median_s"] / shared["cpu_median_s"]
    notes = sorted({detection_note(r, expected) for r in shared["result"]})
    shared["note"] = (f"each set: {' / '.join(notes)}; {shared['speedup']:.2f}x faster than "
                      f"separate calls ({shared['cpu_speedup']:.2f}x in CPU time)")
    if args.profile:
        query_fn = tf.function(lambda x: model.query_model(x, training=False))
        query = tf.convert_to_tensor(model.mold_inputs([image])[0])
        add_row("  siamese: query_model (backbone+FPN)",
                lambda: [p.numpy() for p in query_fn(query)], floor_fn)


# ====================================================================== report
def format_table(rows, machine, args, memory_mode):
    """The fixed-width results table and the machine line, as one string."""
    peak_label = "peak MiB" if memory_mode == "call" else "proc peak"
    header = (f"{'row':<44} {'median s':>9} {'min s':>8} {'first s':>8} {'x floor':>8} "
              f"{'cpu s':>8} {'x fl cpu':>8} {peak_label:>9} {'+MiB':>6}  note")
    lines = [header, "-" * len(header)]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") else "1.00"
        cpu_ratio = f"{r['cpu_ratio']:.2f}" if r.get("cpu_ratio") else "1.00"
        first = f"{r['first_s']:.2f}" if r.get("first_s") is not None else "-"
        lines.append(f"{r['name']:<44} {r['median_s']:>9.3f} {r['min_s']:>8.3f} {first:>8} "
                     f"{ratio:>8} {r['cpu_median_s']:>8.3f} {cpu_ratio:>8} "
                     f"{r['peak_mib']:>9.0f} {r['rise_mib']:>6.0f}  {r.get('note', '')}")
    lines.append("")
    lines.append(f"machine: {machine['cpu']}, {machine['cores']} cores, "
                 f"{machine['ram_gib']} GiB RAM, {machine['device']}, TF "
                 f"{machine['tensorflow']}, Python {machine['python']}, load average "
                 f"{machine['load_average_1min']} at start")
    proposals = TINY_OVERRIDES["POST_NMS_ROIS_INFERENCE"] if args.tiny else args.proposals
    lines.append(f"input: {args.size}x{args.size}, {args.backbone}, batch 1, "
                 f"{proposals} proposals, reference {args.reference_size}x"
                 f"{args.reference_size}; median/min of {args.repeats} repeats after "
                 f"{args.warmup} warm-up (first s = first warm-up call, with tracing); "
                 "random-init weights (background logit pinned low)"
                 + ("; TINY heads (not a benchmark)" if args.tiny else ""))
    lines.append("x floor = row median / median of the bare-backbone calls interleaved "
                 "with that row; cpu s = median process CPU time (all threads) per call, "
                 "x fl cpu = its ratio to the interleaved floor calls' (steadier under "
                 "load)")
    lines.append("peak MiB = peak RSS during a call, +MiB = its rise over the RSS before "
                 "the call" if memory_mode == "call" else
                 "proc peak = process peak RSS so far (ru_maxrss), +MiB = its rise")
    return "\n".join(lines)


def parse_args(argv=None):
    from mrcnn.layers.backbone import ARCHITECTURES
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024,
                        help="query image side in pixels, a multiple of 64 (default 1024)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per row")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed calls per row before timing (the first traces)")
    parser.add_argument("--only", choices=GROUPS + ("all",), default="all")
    parser.add_argument("--backbone", choices=ARCHITECTURES, default="resnet50")
    parser.add_argument("--proposals", type=int, default=1000,
                        help="POST_NMS_ROIS_INFERENCE (default 1000)")
    parser.add_argument("--reference-size", type=int, default=192,
                        help="Siamese reference side, a multiple of 32 (default 192)")
    parser.add_argument("--profile", action="store_true",
                        help="also time the stages of the Mask R-CNN graph and the numpy "
                             "molding/unmolding")
    parser.add_argument("--tiny", action="store_true",
                        help="narrow heads and few ROIs (overrides --proposals): a smoke "
                             "test of the script, not a benchmark")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.size < 64 or args.size % 64:
        parser.error(f"--size must be a positive multiple of 64, got {args.size}")
    if args.reference_size < 32 or args.reference_size % 32:
        parser.error(f"--reference-size must be a positive multiple of 32, got "
                     f"{args.reference_size}")
    if args.repeats < 1 or args.warmup < 0 or args.proposals < 1:
        parser.error("--repeats and --proposals must be >= 1 and --warmup >= 0")
    return args


def main(argv=None):
    """Run the benchmark and print the table. Returns the report (also written to
    ``--json``): {"machine", "args", "memory_mode", "rows"}, each row a dict of
    :func:`time_row`'s fields without ``result``, plus ``name`` and ``note``."""
    import tempfile

    import keras
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    keras.utils.set_random_seed(0)
    machine = machine_info()
    memory = PeakMemory()
    rows = []

    def add_row(name, fn, floor_fn):
        logger.info("timing %s", name)
        row = time_row(fn, floor_fn, args.repeats, args.warmup, memory)
        row["name"] = name
        rows.append(row)
        return row

    image = random_image(args.size, seed=3)
    from mrcnn.data import mold_image
    molded = mold_image(image.astype(np.float32), mrcnn_config(args))[None].astype(np.float32)
    floor_fn = make_floor(args, molded)
    floor_row = add_row(f"{args.backbone} forward (floor)", floor_fn, None)
    groups = GROUPS if args.only == "all" else (args.only,)
    with tempfile.TemporaryDirectory(prefix="benchmark_") as tmpdir:
        if "mrcnn" in groups:
            mrcnn_inference_rows(args, floor_fn, add_row, image, tmpdir)
            keras.backend.clear_session()  # the floor's tf.function stays usable
            mrcnn_train_row(args, floor_fn, add_row, tmpdir)
            keras.backend.clear_session()
        if "siamese" in groups:
            siamese_rows(args, floor_fn, add_row, image, tmpdir)
    # The floor row reports every floor call of the run (its own and the interleaved).
    floor_row["times"] = floor_row["times"] + [t for r in rows for t in r["floor_times"]]
    floor_row["cpu_times"] = floor_row["cpu_times"] + [
        t for r in rows for t in r["floor_cpu_times"]]
    summarise(floor_row)
    floor_row["note"] = f"all {len(floor_row['times'])} floor calls"
    print(format_table(rows, machine, args, memory.mode))
    report = {"machine": machine, "args": vars(args), "memory_mode": memory.mode,
              "rows": [{k: v for k, v in r.items() if k != "result"} for r in rows]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
