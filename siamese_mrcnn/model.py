"""Siamese Mask R-CNN: Mask R-CNN that finds instances matching a reference image.

Shape shorthand: B queries, S shots (references per query, config.NUM_TARGETS),
M reference sets evaluated against one query, h_r = w_r = TARGET_MAX_DIM.

Differences from :class:`mrcnn.model.MaskRCNN`, each an override of one assembly
method (nothing else is copied):

- inputs: ``input_reference_images`` [B, S, h_r, w_r, 3] (molded) in addition;
- feature maps: query and references go through the *same* ``resnet_model`` and
  ``fpn_model`` (FPN with ReLU); each level's reference maps are pooled to one vector
  (mean over shots and locations) and matched to the query map by L1 distance,
  concatenated and reduced by a 1x1 conv ``fpn_distance_P2``..``P6`` to 384 channels;
- heads: 2 classes (background, match) with class-agnostic box and mask outputs;
- losses: the classifier loss is a plain mean cross-entropy (no active-class mask).

Inference exposes three sub-models sharing the full model's weights, so a query's
backbone and FPN run once for several reference sets (``detect_multi``):
``query_model`` (image -> P2..P6), ``reference_model`` (references -> 5 vectors
[B, 256]) and ``head_model`` (pyramid, vectors, meta -> detections, masks).
"""

import logging
import os
import re

import keras
import numpy as np

from mrcnn.layers.backbone import build_fpn_model, build_resnet_model
from mrcnn.model import MaskRCNN, run_compiled
from mrcnn.training import compiles_with_jit
from siamese_mrcnn.layers import L1Match, ReferencePooling

logger = logging.getLogger(__name__)

MATCHED_CHANNELS = 384  # the paper's width; SiameseConfig.MATCHED_CHANNELS
LEVELS = ("P2", "P3", "P4", "P5", "P6")


class SiameseMaskRCNN(MaskRCNN):
    """One-shot instance segmentation model (see module docstring).

    Args as :class:`mrcnn.model.MaskRCNN`; ``config`` a
    :class:`siamese_mrcnn.config.SiameseConfig`.
    """

    CHECKPOINT_TEMPLATE = "siamese_mrcnn_{epoch:04d}.h5"
    # The original project's checkpoints: siamese_mrcnn_0120.h5, and its released
    # large_siamese_mrcnn_coco_i1_0160.h5; the last four digits are the epoch.
    ORIGINAL_CHECKPOINT = re.compile(r"\w*siamese_mrcnn\w*?_(\d{4})\.h5")

    def set_log_dir(self, model_path=None):
        """:meth:`mrcnn.model.MaskRCNN.set_log_dir`; besides, a checkpoint of the
        original project (named ``...siamese_mrcnn..._NNNN.h5``, in any folder) sets
        the epoch to NNNN, as the original's loader read it, so training continues
        after it (in a new run folder unless the checkpoint is in one)."""
        super().set_log_dir(model_path)
        if model_path and not self.epoch:
            match = self.ORIGINAL_CHECKPOINT.fullmatch(os.path.basename(str(model_path)))
            if match:
                self.epoch = int(match.group(1))

    # ------------------------------------------------------------ assembly overrides
    def build_inputs(self):
        inputs = super().build_inputs()
        config = self.config
        inputs["input_reference_images"] = keras.Input(
            [config.NUM_TARGETS] + [int(v) for v in config.TARGET_SHAPE],
            name="input_reference_images")
        return inputs

    def build_feature_maps(self, inputs):
        config = self.config
        resnet = build_resnet_model([None, None, config.IMAGE_CHANNEL_COUNT], config.BACKBONE,
                                    train_bn=config.TRAIN_BN, name="resnet_model",
                                    width=config.BACKBONE_WIDTH)
        fpn = build_fpn_model([int(c.shape[-1]) for c in resnet.outputs],
                              pyramid_size=config.FPN_FEATUREMAPS, relu=True, name="fpn_model")
        query_pyramid = fpn(resnet(inputs["input_image"]))
        references = inputs["input_reference_images"]
        flat_references = keras.ops.reshape(
            references, (-1,) + tuple(int(v) for v in config.TARGET_SHAPE))  # [B*S, h, w, 3]
        reference_pyramid = fpn(resnet(flat_references))
        reference_vectors = [ReferencePooling(config.NUM_TARGETS, name=f"reference_pool_{lvl}")(r)
                             for lvl, r in zip(LEVELS, reference_pyramid)]
        matched = [self.build_matching(q, v, lvl)
                   for lvl, q, v in zip(LEVELS, query_pyramid, reference_vectors)]
        # Kept for the inference sub-models (query features computed once per image).
        self._query_pyramid = list(query_pyramid)
        self._reference_vectors = reference_vectors
        return matched, matched[:4]

    def build_matching(self, query_map, reference_vector, level):
        """L1 matching at one level -> [B, h, w, MATCHED_CHANNELS] (384 in the paper)."""
        joined = L1Match(name=f"fpn_match_{level}")([query_map, reference_vector])
        return keras.layers.Conv2D(self.config.MATCHED_CHANNELS, 1,
                                   name=f"fpn_distance_{level}")(joined)

    def build_anchors(self, inputs):
        if "input_anchors" in inputs:
            return inputs["input_anchors"]
        # The meta (not the image) carries the batch size, so the head sub-model can
        # compute anchors without receiving the query image.
        return self._anchor_layer()(inputs["input_image_meta"])

    @property
    def class_agnostic_heads(self):
        return True

    @property
    def has_mask_head(self):
        return self.config.MODEL == "mrcnn"

    def active_class_ids(self, inputs):
        return None  # plain mean cross-entropy over all sampled ROIs (SPEC section 2)

    def build_inference_model(self, inputs, rpn, feature_maps):
        model = super().build_inference_model(inputs, rpn, feature_maps)
        self.query_model = keras.Model(inputs["input_image"], self._query_pyramid,
                                       name="query_features")
        self.reference_model = keras.Model(inputs["input_reference_images"],
                                           self._reference_vectors,
                                           name="reference_features")
        head_inputs = self._query_pyramid + self._reference_vectors + [
            inputs["input_image_meta"]]
        if "input_anchors" in inputs:
            head_inputs.append(inputs["input_anchors"])
        # model.output keeps the dict structure (model.outputs is a flat list).
        self.head_model = keras.Model(head_inputs, model.output, name="matching_heads")
        for sub_model in (self.query_model, self.reference_model, self.head_model):
            sub_model.jit_compile = compiles_with_jit()
        return model

    # "source.id" keys of the classes training batches may query (a split's seen
    # classes); None: every class. Set by ``train(..., active_class_ids=...)``.
    train_class_keys = None

    def train(self, train_dataset, val_dataset, learning_rate, epochs, layers,
              augmentation=None, custom_callbacks=None, seed=None, verbose=1,
              active_class_ids=None):
        """:meth:`mrcnn.model.MaskRCNN.train`, plus ``active_class_ids``: class ids of
        ``train_dataset`` whose instances may be queried and serve as references in
        this call's training and validation batches, e.g. the seen classes of a split;
        None for every class. The validation dataset gets the same classes by their
        source ids ("coco.18"), so it may number its classes differently."""
        if active_class_ids is None:
            self.train_class_keys = None
        else:
            self.train_class_keys = tuple(class_key(train_dataset, c) for c in active_class_ids)
        return super().train(train_dataset, val_dataset, learning_rate, epochs, layers,
                             augmentation=augmentation, custom_callbacks=custom_callbacks,
                             seed=seed, verbose=verbose)

    def make_data_generator(self, dataset, shuffle=True, augmentation=None, seed=None,
                            steps=None):
        """One-shot batches of ``dataset``, restricted to ``train_class_keys``."""
        from siamese_mrcnn.data import OneShotDataGenerator
        active = None
        if self.train_class_keys is not None:
            mapping = dataset.class_from_source_map
            active = [mapping[k] for k in self.train_class_keys if k in mapping]
            if not active:
                raise ValueError(f"{dataset!r} has none of the training classes "
                                 f"{list(self.train_class_keys)}")
        return OneShotDataGenerator(dataset, self.config, shuffle=shuffle,
                                    augmentation=augmentation, seed=seed, steps=steps,
                                    active_class_ids=active)

    # ------------------------------------------------------------ inference
    def mold_references(self, references, subtract_mean=True):
        """Reference crops -> [S, h_r, w_r, 3] float32 molded references.

        ``references``: one reference or a sequence of S (= NUM_TARGETS) of them. A
        reference is either an image [h, w, 3] (any size from
        ``references.MIN_REFERENCE_SIZE`` = 8 pixels per side: it is resized by the
        reference rule; smaller crops raise ValueError) or an image with an object
        box, given as a dict ``{"image": [H, W, 3], "box": (y1, x1, y2, x2)}`` or a
        tuple ``(image, box)``; see :meth:`reference_from_box`. With
        ``subtract_mean=False`` the mean pixel is not subtracted (the original
        evaluation's quirk). Resized by ``config.RESAMPLING``'s rule.
        """
        from mrcnn.data import mold_image
        from siamese_mrcnn.references import check_reference_size, resize_reference
        config = self.config
        if _is_single_reference(references):
            references = [references]
        references = list(references)
        if len(references) != config.NUM_TARGETS:
            raise ValueError(f"expected {config.NUM_TARGETS} reference image(s) per query "
                             f"(config.NUM_TARGETS), got {len(references)}")
        out = []
        for ref in references:
            if isinstance(ref, dict) or _is_image_and_box(ref):
                image, box = (ref["image"], ref["box"]) if isinstance(ref, dict) else ref
                ref = self.reference_from_box(image, box)
            ref = np.asarray(ref)
            if ref.ndim != 3 or ref.shape[-1] != config.IMAGE_CHANNEL_COUNT:
                raise ValueError(f"a reference image must be [h, w, "
                                 f"{config.IMAGE_CHANNEL_COUNT}], got shape {ref.shape}")
            check_reference_size(*ref.shape[:2], what="a reference image")
            resized = resize_reference(ref, config)
            out.append(mold_image(resized, config) if subtract_mean
                       else resized.astype(np.float32))
        return np.stack(out).astype(np.float32)

    def reference_from_box(self, image, box):
        """Reference uint8 [h_r, w_r, 3] of the object in pixel ``box`` of ``image``.

        ``box`` is (y1, x1, y2, x2) in pixels of ``image`` as given (y2/x2 exclusive).
        As in training (SPEC section 4), the image is first resized the query way
        (IMAGE_RESIZE_MODE, except that "crop" is done as "square" so the object
        cannot be cut away), then the box, mapped into the resized image, is cropped
        and resized by the reference rule (:func:`siamese_mrcnn.references.crop_reference`).

        Raises ValueError when the box (clipped to the image) is below
        ``references.MIN_REFERENCE_SIZE`` pixels on a side, in the image as given
        or once resized the query way.
        """
        from mrcnn import utils
        from siamese_mrcnn.references import check_reference_size, crop_reference
        config = self.config
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != config.IMAGE_CHANNEL_COUNT:
            raise ValueError(f"a reference's source image must be [H, W, "
                             f"{config.IMAGE_CHANNEL_COUNT}], got shape {image.shape}")
        box = np.asarray(box, dtype=np.float64).reshape(-1)
        if box.shape != (4,):
            raise ValueError(f"a reference box must be (y1, x1, y2, x2), got {box.tolist()}")
        mode = "square" if config.IMAGE_RESIZE_MODE == "crop" else config.IMAGE_RESIZE_MODE
        resized, _, scale, padding, _ = utils.resize_image(
            image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
            min_scale=config.IMAGE_MIN_SCALE, mode=mode,
            resampling=utils.config_resampling(config))
        shift = np.array([padding[0][0], padding[1][0]] * 2, dtype=np.float64)
        scaled = np.round(box * scale + shift).astype(int)
        given = _clipped_size(box, image.shape)
        if min(given) > 0:  # a box outside the image is crop_reference's error
            check_reference_size(*given, what=f"the reference box {box.astype(int).tolist()}")
            check_reference_size(*_clipped_size(scaled, resized.shape),
                                 what=f"the reference box {box.astype(int).tolist()} resized "
                                      f"the query way (scale {scale:.3g})")
        return crop_reference(resized, scaled, config)

    def detect(self, targets, images, verbose=0, subtract_reference_mean=True):
        """Detect instances matching each query's references.

        Args:
            targets: one entry per query image: a reference or a list of NUM_TARGETS
                of them. A reference is an image [h, w, 3] (any size; resized by the
                reference rule) or an image with a pixel box, ``{"image": image,
                "box": (y1, x1, y2, x2)}`` or ``(image, box)`` (see
                :meth:`reference_from_box`).
            images: list of query RGB images.
        Returns one dict per image as ``mrcnn``'s ``detect``: rois int32 [N, 4] pixel
        (y1, x1, y2, x2) in the original image, class_ids int32 [N] (1 = matches the
        reference), scores float32 [N], masks bool [H, W, N].
        """
        if self.mode != "inference":
            raise ValueError("detect needs a model built in mode='inference'")
        if len(targets) != len(images):
            raise ValueError(f"detect needs one reference set per image: got "
                             f"{len(targets)} reference sets for {len(images)} images")
        results = []
        batch = self.config.BATCH_SIZE
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            molded, metas, _ = self.mold_inputs(chunk)
            refs = np.stack([self.mold_references(t, subtract_reference_mean)
                             for t in targets[start:start + batch]])
            results.extend(self.detect_molded(molded, metas,
                                              extra_inputs={"input_reference_images": refs}))
        return results

    def detect_multi(self, image, reference_sets, subtract_reference_mean=True):
        """Detect in one query image against several reference sets (e.g. categories).

        The query's backbone and FPN run once; each reference set is matched against the
        shared features, BATCH_SIZE sets at a time. Gives the result of calling
        ``detect([refs], [image])`` for each set, up to float round-off (oneDNN kernels
        depend on the head batch size; near-tied scores may then swap an NMS or top-k
        decision). Returns one result dict per set.
        """
        if self.mode != "inference":
            raise ValueError("detect_multi needs a model built in mode='inference'")
        if len(reference_sets) == 0:
            return []
        molded, metas, _ = self.mold_inputs([image])
        pyramid = run_compiled(self.query_model, molded)
        results = []
        batch = max(1, self.config.BATCH_SIZE)
        for start in range(0, len(reference_sets), batch):
            sets = reference_sets[start:start + batch]
            refs = np.stack([self.mold_references(s, subtract_reference_mean) for s in sets])
            vectors = run_compiled(self.reference_model, refs)
            n = len(sets)
            head_metas = np.repeat(metas, n, axis=0)
            head_inputs = [np.repeat(p, n, axis=0) for p in pyramid] + list(vectors) + [
                head_metas] + list(self.anchors_input(molded.shape[1:3], n).values())
            outputs = run_compiled(self.head_model, head_inputs)
            results.extend(self.unmold_outputs(outputs, head_metas))
        return results


def class_key(dataset, class_id):
    """The "source.id" key (e.g. "coco.18") of a prepared dataset's class id: the same
    class in another dataset of the same source, whatever its class id there."""
    info = dataset.class_info[int(class_id)]
    return f"{info['source']}.{info['id']}"


def _clipped_size(box, shape):
    """(height, width) in pixels of a (y1, x1, y2, x2) box clipped to an image of
    ``shape``; 0 for a side outside it."""
    y1, x1, y2, x2 = (float(v) for v in box)
    return (max(0, int(min(y2, shape[0]) - max(y1, 0))),
            max(0, int(min(x2, shape[1]) - max(x1, 0))))


def _is_image_and_box(value):
    """True for a tuple (image [H, W, C], box of 4 numbers)."""
    if not isinstance(value, tuple) or len(value) != 2:
        return False
    image, box = value
    return np.ndim(image) == 3 and np.shape(box) == (4,)


def _is_single_reference(value):
    """True for one reference (image, dict or (image, box)), False for a sequence."""
    return ((isinstance(value, np.ndarray) and value.ndim == 3) or isinstance(value, dict)
            or _is_image_and_box(value))
