#!/usr/bin/env python
"""Wall time, peak memory and multiply-adds of Mask R-CNN and Siamese Mask R-CNN
beside a bare ResNet, on any Keras backend and beside torchvision's Mask R-CNN.

    python scripts/benchmark.py [--size 1024] [--repeats 5] [--warmup 1]
        [--backend tensorflow,jax,torch,torchvision] [--only mrcnn|siamese|all]
        [--backbone resnet50] [--mixed-precision] [--profile] [--json out.json]

(also ``python -m siamese_mrcnn.benchmark``; :func:`main` takes the same arguments).

``--backend`` takes a comma-separated list; each entry runs in its own process (a
process runs one Keras backend) and one table shows all their rows. "torchvision"
times ``torchvision.models.detection.maskrcnn_resnet50_fpn`` (random weights, the
same image, 100 detections with masks, and a training step of batch 1) against
torchvision's own bare ResNet-50. Default: the backend of $KERAS_BACKEND.

Every row is timed against a floor: a bare ResNet forward pass (C2..C5, batch 1) on
the same molded image, in the same process. Floor and row calls alternate (floor,
row, floor, row, ...), so a change of load from other processes during a row moves
both; the "x floor" ratio divides the row's median by the median of the floor calls
interleaved with it.

Multiply-adds ("GMAC"): those of every convolution and dense layer the row runs,
counted from the shapes of one pass of the graph (Keras: the shapes Keras infers for
the concrete inputs; torchvision: forward hooks). A training step counts 3x the
forward pass (the backward pass does two products per forward one). "x MAC bound"
is the row's time over the time those multiply-adds would take at the rate the bare
backbone reaches (floor MACs / floor time): 1.0 would be the whole row running as
efficiently as the backbone's convolutions.

Rows (``--only`` picks the groups):

- mrcnn: ``MaskRCNN.detect`` on one image (mold + graph + unmold), 1000 proposals,
  DETECTION_MIN_CONFIDENCE 0 so DETECTION_MAX_INSTANCES (100) detections get masks;
  the graph alone (``run_graph_on_batch`` on molded inputs); one training step
  (``train_on_batch``, batch 1, compiled as ``MaskRCNN.train`` compiles) on a
  shapes-dataset batch from ``DataGenerator``; with ``--mixed-precision`` the same
  step under the mixed_float16 policy (loss scaling).
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
RSS, so a rise can understate a row's own need. On a GPU this is host memory only.
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

import numpy as np

import mrcnn  # noqa: F401  (sets TF_ENABLE_ONEDNN_OPTS before any row imports TensorFlow)

logger = logging.getLogger("benchmark")

GROUPS = ("mrcnn", "siamese")
BACKENDS = ("tensorflow", "jax", "torch", "torchvision")


# ====================================================================== machine, memory
def machine_info(backend):
    """Dict describing the machine: CPU model, cores, RAM, load, library versions and
    the devices of ``backend`` (a Keras backend name or "torchvision")."""
    import importlib.metadata
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
    if backend == "torchvision":
        import torch
        device = (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only")
        library = f"torch {torch.__version__}"
    else:
        from mrcnn.backends import device_names
        names = [n for n in device_names() if not n.lower().startswith(("cpu", "/device:cpu"))]
        device = ", ".join(names) if names else "CPU only"
        module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
        library = f"{module} {importlib.metadata.version(module)}, keras " \
                  f"{importlib.metadata.version('keras')}"
    return {"cpu": cpu, "cores": cores, "ram_gib": ram_gib,
            "load_average_1min": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "backend": backend, "library": library,
            "device": device}


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


def _configured(config_cls, args, **overrides):
    if args.tiny:
        overrides = dict(TINY_OVERRIDES, **overrides)
    if overrides:
        config_cls = type(config_cls.__name__, (config_cls,), overrides)
    return config_cls()


def mrcnn_config(args, **overrides):
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
    return _configured(BenchmarkConfig, args, **overrides)


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
    """Bare ResNet (C2..C5) forward on ``molded`` [1, H, W, 3]; returns (callable,
    its multiply-adds)."""
    import keras

    from mrcnn.layers.backbone import build_resnet_model
    from mrcnn.model import run_compiled
    model = build_resnet_model(list(molded.shape[1:]), args.backbone, name="floor_resnet")
    model.jit_compile = keras.backend.backend() == "jax"
    macs = multiply_adds(model, molded)
    return (lambda: run_compiled(model, molded)), macs


# ====================================================================== multiply-adds
def _conv_macs(layer, in_shape, out_shape):
    """Multiply-adds of one Conv2D call: output cells x kernel cells x in/groups x out."""
    kernel = int(np.prod(layer.kernel_size))
    groups = int(getattr(layer, "groups", 1) or 1)
    return int(np.prod(out_shape[:-1])) * kernel * (in_shape[-1] // groups) * out_shape[-1]


def _deconv_macs(layer, in_shape, out_shape):
    """Conv2DTranspose: every input cell scatters a kernel of in x out products."""
    return int(np.prod(in_shape[:-1])) * int(np.prod(layer.kernel_size)) * \
        in_shape[-1] * out_shape[-1]


def _dense_macs(layer, in_shape, out_shape):
    return int(np.prod(in_shape[:-1])) * in_shape[-1] * out_shape[-1]


def multiply_adds(model, inputs):
    """Multiply-adds of one forward pass of the Keras ``model`` on ``inputs`` (numpy
    arrays, or their shapes' structure), without computing anything.

    Keras infers every layer's output shape for these concrete input shapes (nested
    models included, each call counted, e.g. the RPN once per pyramid level); every
    Conv2D, Conv2DTranspose and Dense call is counted from its input and output
    shapes. ROI counts are the graph's static padded ones (all proposal and detection
    slots run through the heads).
    """
    import keras
    rules = [(keras.layers.Conv2DTranspose, _deconv_macs),
             (keras.layers.Conv2D, _conv_macs), (keras.layers.Dense, _dense_macs)]
    counted = []
    originals = {cls: cls.compute_output_spec for cls, _ in rules}

    own = {cls: "compute_output_spec" in cls.__dict__ for cls, _ in rules}

    def counting(cls, rule):
        def spec(self, *args, **kwargs):
            out = originals[cls](self, *args, **kwargs)
            shape_in = [1 if d is None else int(d) for d in args[0].shape]
            shape_out = [1 if d is None else int(d) for d in out.shape]
            counted.append(rule(self, shape_in, shape_out))
            return out
        return spec

    specs = keras.tree.map_structure(
        lambda a: keras.KerasTensor(np.shape(a), dtype=str(np.asarray(a).dtype)), inputs)
    try:
        for cls, rule in rules:
            cls.compute_output_spec = counting(cls, rule)
        model.compute_output_spec(specs)
    finally:
        for cls, original in originals.items():
            if own[cls]:
                cls.compute_output_spec = original
            else:
                del cls.compute_output_spec
    return int(sum(counted))


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
    from mrcnn.model import MaskRCNN, run_compiled
    config = mrcnn_config(args)
    model = MaskRCNN("inference", config, tmpdir)
    favour_objects(model.keras_model)
    molded, metas, _ = model.mold_inputs([image])
    inputs = {"input_image": molded, "input_image_meta": metas}
    macs = multiply_adds(model.keras_model, inputs)
    row = add_row("MaskRCNN detect (mold+graph+unmold)",
                  lambda: model.detect([image])[0], floor_fn, macs)
    row["note"] = detection_note(row["result"], config.DETECTION_MAX_INSTANCES)
    add_row("MaskRCNN graph only", lambda: model.run_graph_on_batch(inputs), floor_fn, macs)
    if not args.profile:
        return
    # Each prefix runs the graph up to the named layers; a stage's cost is the
    # difference between consecutive prefixes.
    stages = [("  stage: backbone+FPN", ["fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5", "fpn_p6"]),
              ("  stage: ... +RPN heads", ["rpn_class", "rpn_bbox"]),
              ("  stage: ... +proposals", ["ROI"]),
              ("  stage: ... +classifier+detection", ["mrcnn_detection"])]
    for label, names in stages:
        sub = prefix_model(model.keras_model, names)
        add_row(label, lambda sub=sub: run_compiled(sub, inputs), floor_fn,
                multiply_adds(sub, inputs))
    outputs = model.run_graph_on_batch(inputs)
    meta = metas[0]
    add_row("  numpy: mold_inputs", lambda: model.mold_inputs([image]), floor_fn)
    add_row("  numpy: unmold_detections", lambda: model.unmold_detections(
        outputs["detections"][0], outputs["mrcnn_mask"][0], meta[1:4].astype(int),
        meta[4:7].astype(int), meta[7:11]), floor_fn)


def mrcnn_train_row(args, floor_fn, add_row, tmpdir, policy="float32"):
    """One ``train_on_batch`` (batch 1) on a shapes batch, compiled as ``train`` does,
    under the dtype ``policy`` ("mixed_float16": float16 compute, loss scaling)."""
    import keras

    from mrcnn.data import DataGenerator
    from mrcnn.model import MaskRCNN
    from mrcnn.training import (compiles_with_jit, make_optimizer, resolve_layer_regex,
                                set_trainable)
    from samples.shapes.shapes import ShapesDataset
    config = mrcnn_config(args, DTYPE_POLICY=policy)
    keras_model = MaskRCNN("training", config, tmpdir).keras_model
    dataset = ShapesDataset()
    dataset.load_shapes(4, args.size, args.size, seed=1)
    dataset.prepare()
    batch = DataGenerator(dataset, config, shuffle=False, seed=0)[0]
    set_trainable(keras_model, resolve_layer_regex("all"))
    keras_model.compile(optimizer=make_optimizer(
        config.OPTIMIZER, config.LEARNING_RATE, config.LEARNING_MOMENTUM,
        config.GRADIENT_CLIP_NORM), jit_compile=compiles_with_jit())
    macs = 3 * multiply_adds(keras_model, batch)
    label = "" if policy == "float32" else f", {policy}"
    row = add_row(f"MaskRCNN train step (batch 1{label})",
                  lambda: keras_model.train_on_batch(batch, return_dict=True), floor_fn, macs)
    loss = float(row["result"]["loss"])
    row["note"] = f"loss {loss:.3f}" + ("" if np.isfinite(loss) else " (not finite)")
    if isinstance(keras_model.optimizer, keras.optimizers.LossScaleOptimizer):
        row["note"] += ", loss scaling"


def siamese_rows(args, floor_fn, add_row, image, tmpdir):
    """1 reference; 3 reference sets through detect_multi and as 3 detect calls."""
    from mrcnn.model import run_compiled
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
    molded, metas, _ = model.mold_inputs([image])
    refs = np.stack([model.mold_references(c) for c in crops])  # [3, 1, h, w, 3]
    one = multiply_adds(model.keras_model, {"input_image": molded, "input_image_meta": metas,
                                            "input_reference_images": refs[:1]})
    query = multiply_adds(model.query_model, molded)
    reference = multiply_adds(model.reference_model, refs)
    pyramid = run_compiled(model.query_model, molded)
    vectors = run_compiled(model.reference_model, refs)
    heads = multiply_adds(model.head_model, [np.repeat(p, references, 0) for p in pyramid]
                          + list(vectors) + [np.repeat(metas, references, 0)])
    expected = config.DETECTION_MAX_INSTANCES
    row = add_row("Siamese detect, 1 reference",
                  lambda: model.detect([crops[0]], [image])[0], floor_fn, one)
    row["note"] = detection_note(row["result"], expected)
    shared = add_row(f"Siamese detect_multi, {references} refs (shared)",
                     lambda: model.detect_multi(image, crops), floor_fn,
                     query + reference + heads)
    separate = add_row(f"Siamese {references} separate detect calls",
                       lambda: [model.detect([c], [image])[0] for c in crops], floor_fn,
                       references * one)
    shared["speedup"] = separate["median_s"] / shared["median_s"]
    shared["cpu_speedup"] = separate["cpu_median_s"] / shared["cpu_median_s"]
    notes = sorted({detection_note(r, expected) for r in shared["result"]})
    shared["note"] = (f"each set: {' / '.join(notes)}; {shared['speedup']:.2f}x faster than "
                      f"separate calls ({shared['cpu_speedup']:.2f}x in CPU time)")
    if args.profile:
        add_row("  siamese: query_model (backbone+FPN)",
                lambda: run_compiled(model.query_model, molded), floor_fn, query)


# ====================================================================== torchvision
def torch_multiply_adds(module, run):
    """Multiply-adds of the nn.Conv2d, nn.ConvTranspose2d and nn.Linear calls made by
    ``run()`` (forward hooks on ``module``'s sub-modules); returns (result, MACs)."""
    import torch
    counted = []

    def hook(layer, inputs, output):
        x = inputs[0]
        if isinstance(layer, torch.nn.ConvTranspose2d):
            kernel = layer.kernel_size[0] * layer.kernel_size[1]
            counted.append(x.shape[0] * x.shape[2] * x.shape[3] * kernel
                           * layer.in_channels * layer.out_channels // layer.groups)
        elif isinstance(layer, torch.nn.Conv2d):
            kernel = layer.kernel_size[0] * layer.kernel_size[1]
            counted.append(output.shape[0] * output.shape[2] * output.shape[3] * kernel
                           * layer.in_channels // layer.groups * layer.out_channels)
        else:
            counted.append(x.numel() // x.shape[-1] * layer.in_features * layer.out_features)

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))]
    try:
        result = run()
    finally:
        for h in handles:
            h.remove()
    return result, int(sum(counted))


def torchvision_rows(args, add_row, image):
    """torchvision's maskrcnn_resnet50_fpn (random weights) on the same image: 100
    detections with masks, and a training step of batch 1 (SGD) on a shapes batch,
    timed against torchvision's bare ResNet-50 (C2..C5) on the same image."""
    import torch
    import torchvision
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    size = args.size

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    tensor = torch.from_numpy(image).permute(2, 0, 1).float().div(255.0).to(device)
    trunk = torchvision.models.resnet50(weights=None)
    body = torch.nn.Sequential(*list(trunk.children())[:-2]).to(device).eval()
    # torchvision normalises and resizes inside the model; the bare trunk gets the
    # same normalised 1024x1024 tensor.
    floor_input = ((tensor - tensor.mean()) / tensor.std())[None]

    def floor_fn():
        with torch.no_grad():
            out = body(floor_input)
        sync()
        return out

    _, floor_macs = torch_multiply_adds(body, floor_fn)
    floor_row = add_row("torchvision resnet50 forward (floor)", floor_fn, None, floor_macs)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91,
                                  min_size=size, max_size=size, box_score_thresh=0.0,
                                  box_detections_per_img=100).to(device).eval()

    def detect():
        with torch.no_grad():
            out = model([tensor])[0]
        sync()
        return out

    _, macs = torch_multiply_adds(model, detect)
    row = add_row("torchvision maskrcnn_resnet50_fpn detect", detect, floor_fn, macs)
    boxes = int(row["result"]["boxes"].shape[0])
    row["note"] = f"{boxes} detections, {int(row['result']['masks'].shape[0])} masks"

    from samples.shapes.shapes import ShapesDataset
    shapes = ShapesDataset()
    shapes.load_shapes(1, size, size, seed=1)
    shapes.prepare()
    masks, class_ids = shapes.load_mask(0)
    from mrcnn.utils import extract_bboxes
    boxes_yx = extract_bboxes(masks)
    target = {"boxes": torch.tensor(boxes_yx[:, [1, 0, 3, 2]], dtype=torch.float32,
                                    device=device),
              "labels": torch.tensor(class_ids, dtype=torch.int64, device=device),
              "masks": torch.from_numpy(masks.transpose(2, 0, 1).astype(np.uint8)).to(device)}
    train_image = torch.from_numpy(shapes.load_image(0)).permute(2, 0, 1).float().div(
        255.0).to(device)
    train_model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91,
                                        min_size=size, max_size=size).to(device).train()
    optimizer = torch.optim.SGD(train_model.parameters(), lr=0.001, momentum=0.9)
    policies = ["float32"] + (["mixed_float16"] if args.mixed_precision else [])
    scaler = torch.amp.GradScaler(device.type) if args.mixed_precision else None
    for policy in policies:
        def step(policy=policy):
            optimizer.zero_grad()
            with torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda"
                                else torch.bfloat16, enabled=policy != "float32"):
                losses = train_model([train_image], [target])
                loss = sum(losses.values())
            if policy == "float32":
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            sync()
            return float(loss.detach())

        _, forward_macs = torch_multiply_adds(train_model, step)
        label = "" if policy == "float32" else ", autocast"
        row = add_row(f"torchvision train step (batch 1{label})", step, floor_fn,
                      3 * forward_macs)
        row["note"] = f"loss {row['result']:.3f}"
    return floor_row


# ====================================================================== report
def mac_bound(rows):
    """Fill each row's ``mac_bound_ratio``: its median time over the time its
    multiply-adds take at the rate of the floor row of the same backend (in place)."""
    rate = {}
    for r in rows:
        if r.get("floor") and r.get("macs"):
            rate[r["backend"]] = r["macs"] / r["median_s"]
    for r in rows:
        per_second = rate.get(r["backend"])
        r["mac_bound_ratio"] = (r["median_s"] / (r["macs"] / per_second)
                                if per_second and r.get("macs") else None)
    return rows


def format_table(rows, machines, args, memory_mode):
    """The fixed-width results table and one line per backend's machine, as one string."""
    peak_label = "peak MiB" if memory_mode == "call" else "proc peak"
    header = (f"{'backend':<11} {'row':<44} {'median s':>9} {'min s':>8} {'first s':>8} "
              f"{'x floor':>8} {'cpu s':>8} {'x fl cpu':>8} {'GMAC':>7} {'x MAC':>6} "
              f"{peak_label:>9} {'+MiB':>6}  note")
    lines = [header, "-" * len(header)]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") else "1.00"
        cpu_ratio = f"{r['cpu_ratio']:.2f}" if r.get("cpu_ratio") else "1.00"
        first = f"{r['first_s']:.2f}" if r.get("first_s") is not None else "-"
        gmac = f"{r['macs'] / 1e9:.1f}" if r.get("macs") else "-"
        bound = f"{r['mac_bound_ratio']:.2f}" if r.get("mac_bound_ratio") else "-"
        lines.append(f"{r['backend']:<11} {r['name']:<44} {r['median_s']:>9.3f} "
                     f"{r['min_s']:>8.3f} {first:>8} {ratio:>8} {r['cpu_median_s']:>8.3f} "
                     f"{cpu_ratio:>8} {gmac:>7} {bound:>6} {r['peak_mib']:>9.0f} "
                     f"{r['rise_mib']:>6.0f}  {r.get('note', '')}")
    lines.append("")
    for m in machines:
        lines.append(f"machine ({m['backend']}): {m['cpu']}, {m['cores']} cores, "
                     f"{m['ram_gib']} GiB RAM, {m['device']}, {m['library']}, Python "
                     f"{m['python']}, load average {m['load_average_1min']} at start")
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
    lines.append("GMAC = multiply-adds of the row's convolutions and dense layers (train "
                 "step: 3x forward); x MAC = row median / (GMAC at the floor row's "
                 "GMAC per second): 1.0 = as efficient as the bare backbone")
    lines.append("peak MiB = peak RSS during a call, +MiB = its rise over the RSS before "
                 "the call" if memory_mode == "call" else
                 "proc peak = process peak RSS so far (ru_maxrss), +MiB = its rise")
    return "\n".join(lines)


def parse_args(argv=None):
    # Not from mrcnn.layers.backbone: this parent process must not import Keras (its
    # default backend, TensorFlow, may not be installed where a worker runs JAX).
    from siamese_mrcnn.cli_inputs import BACKBONES as ARCHITECTURES
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024,
                        help="query image side in pixels, a multiple of 64 (default 1024)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per row")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed calls per row before timing (the first traces)")
    parser.add_argument("--backend", default=None,
                        help="comma-separated: tensorflow, jax, torch (this model on that "
                             "Keras backend) and torchvision (its maskrcnn_resnet50_fpn); "
                             "each runs in its own process (default: $KERAS_BACKEND, else "
                             "tensorflow)")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="also time the training step under mixed precision "
                             "(mixed_float16 / torch.autocast)")
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
    default = os.environ.get("KERAS_BACKEND") or "tensorflow"
    args.backends = [b.strip() for b in (args.backend or default).split(",") if b.strip()]
    unknown = sorted(set(args.backends) - set(BACKENDS))
    if unknown or not args.backends:
        parser.error(f"--backend: unknown {', '.join(unknown) or '(empty)'}; choose from "
                     f"{', '.join(BACKENDS)}")
    return args


def run_backend(args, backend):
    """All rows of one backend in this process; (rows, machine, memory mode).

    ``backend``: the Keras backend this process runs (set before Keras is imported),
    or "torchvision".
    """
    import tempfile

    memory = PeakMemory()
    rows = []
    image = random_image(args.size, seed=3)

    def add_row(name, fn, floor_fn, macs=None):
        logger.info("%s: timing %s", backend, name)
        row = time_row(fn, floor_fn, args.repeats, args.warmup, memory)
        row.update(name=name, backend=backend, macs=macs, floor=floor_fn is None)
        rows.append(row)
        return row

    if backend == "torchvision":
        floor_row = torchvision_rows(args, add_row, image)
    else:
        import keras
        keras.utils.set_random_seed(0)
        from mrcnn.data import mold_image
        molded = mold_image(image.astype(np.float32), mrcnn_config(args))[None].astype(
            np.float32)
        floor_fn, floor_macs = make_floor(args, molded)
        floor_row = add_row(f"{args.backbone} forward (floor)", floor_fn, None, floor_macs)
        groups = GROUPS if args.only == "all" else (args.only,)
        with tempfile.TemporaryDirectory(prefix="benchmark_") as tmpdir:
            if "mrcnn" in groups:
                mrcnn_inference_rows(args, floor_fn, add_row, image, tmpdir)
                mrcnn_train_row(args, floor_fn, add_row, tmpdir)
                if args.mixed_precision:
                    mrcnn_train_row(args, floor_fn, add_row, tmpdir, policy="mixed_float16")
            if "siamese" in groups:
                siamese_rows(args, floor_fn, add_row, image, tmpdir)
    # The floor row reports every floor call of the run (its own and the interleaved).
    floor_row["times"] = floor_row["times"] + [t for r in rows for t in r["floor_times"]]
    floor_row["cpu_times"] = floor_row["cpu_times"] + [
        t for r in rows for t in r["floor_cpu_times"]]
    summarise(floor_row)
    floor_row["note"] = f"all {len(floor_row['times'])} floor calls"
    rows = [{k: v for k, v in r.items() if k != "result"} for r in rows]
    return rows, machine_info(backend), memory.mode


def run_backend_process(argv, backend):
    """Run this script for one backend in a subprocess; its (rows, machine, mode)."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory(prefix="benchmark_") as tmp:
        out = os.path.join(tmp, "rows.json")
        env = dict(os.environ, KERAS_BACKEND="torch" if backend == "torchvision" else backend)
        cmd = [sys.executable, "-m", "siamese_mrcnn.benchmark", *argv, "--backend", backend,
               "--worker-json", out]
        logger.info("running %s", " ".join(cmd[1:]))
        subprocess.run(cmd, env=env, check=True)
        with open(out) as f:
            part = json.load(f)
    return part["rows"], part["machine"], part["memory_mode"]


def main(argv=None):
    """Run the benchmark and print the table. Returns the report (also written to
    ``--json``): {"machines", "args", "memory_mode", "rows"}, each row a dict of
    :func:`time_row`'s fields without ``result``, plus ``name``, ``backend``,
    ``macs``, ``mac_bound_ratio`` and ``note``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    worker_json = None
    if "--worker-json" in argv:  # internal: one backend's rows, written as JSON
        i = argv.index("--worker-json")
        worker_json = argv[i + 1]
        del argv[i:i + 2]
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    here = os.environ.get("KERAS_BACKEND") or "tensorflow"
    if worker_json or (len(args.backends) == 1 and args.backends[0] == here):
        rows, machine, mode = run_backend(args, args.backends[0])
        if worker_json:
            with open(worker_json, "w") as f:
                json.dump({"rows": rows, "machine": machine, "memory_mode": mode}, f)
            return None
        parts = [(rows, machine, mode)]
    else:
        # Strip our own --backend: each process gets one.
        clean = []
        skip = False
        for a in argv:
            if skip:
                skip = False
                continue
            if a == "--backend":
                skip = True
                continue
            if a.startswith("--backend="):
                continue
            clean.append(a)
        parts = [run_backend_process(clean, b) for b in args.backends]
    rows = mac_bound([r for part in parts for r in part[0]])
    machines = [part[1] for part in parts]
    mode = parts[0][2]
    print(format_table(rows, machines, args, mode))
    report = {"machines": machines, "args": vars(args), "memory_mode": mode, "rows": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
    main()
