"""Detection targets: sample training ROIs from proposals and build their targets (keras.ops).

Shape shorthand: ``B`` batch, ``N`` proposals per image, ``G`` ground-truth slots,
``T`` training ROIs per image, ``h, w`` stored mask size (mini mask or image),
``mh, mw`` target mask size. Boxes are normalised (y1, x1, y2, x2); zero rows are
padding. Ground-truth class ids are int (0 padding, > 0 instance, < 0 crowd region).

:func:`detection_targets` is three steps, each usable and tested alone (the split of
torchvision's Matcher / BalancedPositiveNegativeSampler / BoxCoder):

1. :func:`match_proposals`: each proposal's best ground truth and whether it is a
   positive, a negative or neither;
2. :func:`sample_rois`: T ROI slots per image, positives first;
3. :func:`box_targets` and :func:`mask_targets`: the regression and mask targets
   of the sampled positives.

The whole batch is sampled at once: random keys are drawn for every proposal, keys of
ineligible proposals are pushed below all others, and a descending sort gives each
image a random order of its eligible proposals; per-image counts then pick a prefix.
"""

import keras
from keras import ops

from mrcnn.ops import native
from mrcnn.ops.boxes import box_overlaps, encode_box_deltas

POSITIVE_IOU = 0.5
# Proposals overlapping a crowd box by this much are ambiguous: never negatives.
CROWD_IOU = 0.001


def _random_order(eligible, keys):
    """Indices [B, N] that list each image's eligible entries first, in random order."""
    return ops.argsort(-ops.where(eligible, keys, -1.0), axis=-1)


def _rank(tensor):
    return len(tensor.shape)


def _check_shapes(proposals, gt_class_ids, gt_boxes, gt_masks):
    checks = [("proposals", proposals, 3), ("gt_class_ids", gt_class_ids, 2),
              ("gt_boxes", gt_boxes, 3), ("gt_masks", gt_masks, 4)]
    for name, tensor, rank in checks:
        if _rank(tensor) != rank:
            raise ValueError(f"detection_targets: {name} must have rank {rank}, "
                             f"got shape {tuple(tensor.shape)}")
    slots = {gt_class_ids.shape[1], gt_boxes.shape[1], gt_masks.shape[3]} - {None}
    if len(slots) > 1:
        raise ValueError(
            f"detection_targets: ground-truth slot counts differ: gt_class_ids "
            f"{tuple(gt_class_ids.shape)}, gt_boxes {tuple(gt_boxes.shape)}, gt_masks "
            f"{tuple(gt_masks.shape)} (masks are [B, h, w, G])")


def _prefix(order, length):
    """The first ``length`` columns of ``order`` [B, N], zero padded when N < length."""
    padding = ops.repeat(ops.zeros_like(order[:, :1]), length, axis=1)
    return ops.concatenate([order, padding], axis=1)[:, :length]


def match_proposals(proposals, gt_class_ids, gt_boxes):
    """Label each proposal against the ground truth (the matcher).

    Args:
        proposals: float [B, N, 4] normalised, zero padded.
        gt_class_ids: int [B, G] (0 padding, > 0 instance, < 0 crowd).
        gt_boxes: float [B, G, 4] normalised, zero padded.

    Returns:
        positive: bool [B, N], a non-padding proposal with IoU >= 0.5 with some
            non-crowd ground truth.
        negative: bool [B, N], a non-padding proposal whose best non-crowd IoU is
            < 0.5 and whose IoU with every crowd box is < 0.001.
        matched: int32 [B, N], the index of the best-IoU non-crowd ground truth (any
            index when there is none; only read for positives).
    """
    gt_valid = ops.any(ops.not_equal(gt_boxes, 0.0), axis=-1) & (gt_class_ids != 0)
    crowd = gt_valid & (gt_class_ids < 0)
    instance = gt_valid & (gt_class_ids > 0)
    proposal_valid = ops.any(ops.not_equal(proposals, 0.0), axis=-1)  # [B, N]
    overlaps = box_overlaps(proposals, gt_boxes)  # [B, N, G]
    instance_overlaps = ops.where(instance[:, None, :], overlaps, -1.0)
    roi_iou = ops.max(instance_overlaps, axis=-1)
    matched = ops.cast(ops.argmax(instance_overlaps, axis=-1), "int32")
    crowd_iou = ops.max(ops.where(crowd[:, None, :], overlaps, 0.0), axis=-1)
    positive = proposal_valid & (roi_iou >= POSITIVE_IOU)
    negative = proposal_valid & (roi_iou < POSITIVE_IOU) & (crowd_iou < CROWD_IOU)
    return positive, negative, matched


def sample_rois(positive, negative, num_rois, roi_positive_ratio, seed=None):
    """Pick T ROI slots per image: random positives, then random negatives (the sampler).

    Up to ``int(T * roi_positive_ratio)`` positives are drawn, then
    ``int(1 / roi_positive_ratio * P) - P`` negatives (P = positives drawn; float32
    arithmetic, Matterport's rule, so no positive means no negative), at most the
    remaining slots.

    Args:
        positive, negative: bool [B, N] from :func:`match_proposals`.
        num_rois: int T.
        roi_positive_ratio: float in (0, 1].
        seed: as :func:`detection_targets`.

    Returns:
        index: int32 [B, T], the proposal of each slot (0 in unused slots).
        is_positive: bool [B, T], slots holding a positive (a prefix of each row).
        is_selected: bool [B, T], slots holding a positive or a negative.
    """
    num_rois = int(num_rois)
    max_positives = int(num_rois * roi_positive_ratio)
    keys = keras.random.uniform((2,) + tuple(ops.shape(positive)), seed=seed)
    positive_order = _prefix(_random_order(positive, keys[0]), num_rois)  # [B, T]
    negative_order = _prefix(_random_order(negative, keys[1]), num_rois)
    positive_count = ops.minimum(
        ops.sum(ops.cast(positive, "int32"), axis=-1), max_positives)  # [B]
    negative_count = ops.cast(
        ops.cast(1.0 / roi_positive_ratio, "float32") * ops.cast(positive_count, "float32"),
        "int32") - positive_count
    negative_count = ops.minimum(negative_count, ops.sum(ops.cast(negative, "int32"), -1))
    negative_count = ops.clip(negative_count, 0, num_rois - positive_count)

    slot = ops.arange(num_rois, dtype="int32")[None, :]  # [1, T]
    is_positive = slot < positive_count[:, None]
    is_selected = slot < (positive_count + negative_count)[:, None]
    negative_slot = ops.maximum(slot - positive_count[:, None], 0)
    index = ops.where(is_positive, positive_order,
                      ops.take_along_axis(negative_order, negative_slot, axis=1))
    return index, is_positive, is_selected


def box_targets(rois, gt_boxes, is_positive, bbox_std_dev):
    """Regression targets ``encode_box_deltas(roi, gt) / bbox_std_dev`` of positive
    slots, 0 elsewhere (the box coder).

    Args:
        rois, gt_boxes: float [B, T, 4] normalised, each slot's ROI and matched GT.
        is_positive: bool [B, T].
        bbox_std_dev: 4 floats.

    Returns float32 [B, T, 4].
    """
    # A unit box stands in for rows without a target, so nothing divides by zero.
    unit_box = ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0], dtype="float32")
    positive = is_positive[..., None]
    deltas = encode_box_deltas(ops.where(positive, rois, unit_box),
                               ops.where(positive, gt_boxes, unit_box))
    deltas = deltas / ops.convert_to_tensor(bbox_std_dev, dtype="float32")
    return ops.where(positive, deltas, 0.0)


def mask_targets(rois, gt_boxes, gt_index, gt_masks, is_positive, mask_shape, use_mini_mask):
    """Each positive slot's GT mask cropped to its ROI and resized, rounded to 0/1.

    Args:
        rois, gt_boxes: float [B, T, 4] normalised, each slot's ROI and matched GT box.
        gt_index: int [B, T], the matched GT slot of each ROI slot.
        gt_masks: float [B, h, w, G]: mini masks (each resized to its GT box) if
            ``use_mini_mask``, else full molded-image masks.
        is_positive: bool [B, T].
        mask_shape: (mh, mw).
        use_mini_mask: bool.

    Returns float32 [B, T, mh, mw] (bilinear crop, rounded), 0 for other slots.
    """
    mask_h, mask_w = (int(v) for v in mask_shape)
    num_rois = rois.shape[1]
    mask_rows, mask_cols = gt_masks.shape[1], gt_masks.shape[2]
    num_slots = ops.shape(gt_masks)[3]
    # [B, h, w, G] -> [B * G, h, w, 1]: one image per (batch, GT slot) for the crop
    mask_images = ops.reshape(ops.transpose(gt_masks, [0, 3, 1, 2]),
                              (-1, mask_rows, mask_cols, 1))
    mask_index = ops.arange(ops.shape(gt_masks)[0], dtype="int32")[:, None] * num_slots \
        + gt_index  # [B, T]
    if use_mini_mask:
        # A mini mask spans its GT box: express the ROI in that box's frame.
        y1, x1, y2, x2 = rois[..., 0], rois[..., 1], rois[..., 2], rois[..., 3]
        gy1, gx1 = gt_boxes[..., 0], gt_boxes[..., 1]
        gy2, gx2 = gt_boxes[..., 2], gt_boxes[..., 3]
        gt_h = ops.where(gy2 - gy1 > 0, gy2 - gy1, 1.0)
        gt_w = ops.where(gx2 - gx1 > 0, gx2 - gx1, 1.0)
        crop_boxes = ops.stack([(y1 - gy1) / gt_h, (x1 - gx1) / gt_w,
                                (y2 - gy1) / gt_h, (x2 - gx1) / gt_w], axis=-1)
    else:
        crop_boxes = rois
    crop_boxes = ops.where(is_positive[..., None], crop_boxes, 0.0)
    crops = native.crop_and_resize(mask_images, ops.reshape(crop_boxes, (-1, 4)),
                                   ops.reshape(mask_index, (-1,)), (mask_h, mask_w))
    masks = ops.round(ops.reshape(crops, (-1, num_rois, mask_h, mask_w)))
    return ops.where(is_positive[:, :, None, None], masks, 0.0)


def detection_targets(proposals, gt_class_ids, gt_boxes, gt_masks, train_rois_per_image,
                      roi_positive_ratio, bbox_std_dev, mask_shape, use_mini_mask, seed=None):
    """Sample T ROIs per image and build their class, box and mask targets.

    Zero-padded proposals and ground truth are ignored. Crowd boxes (negative class id)
    are never targets, and a proposal with IoU >= 0.001 with a crowd box is never a
    negative (:func:`match_proposals`). Positives have IoU >= 0.5 with some non-crowd
    GT; negatives have max IoU < 0.5. Slots are drawn by :func:`sample_rois`. GT boxes
    are not added to the proposals.

    Args:
        proposals: float [B, N, 4] normalised, zero padded.
        gt_class_ids: int [B, G].
        gt_boxes: float [B, G, 4] normalised, zero padded.
        gt_masks: bool/float [B, h, w, G]: mini masks (each resized to its GT box) if
            ``use_mini_mask``, else full molded-image masks.
        train_rois_per_image: int T.
        roi_positive_ratio: float in (0, 1].
        bbox_std_dev: 4 floats dividing the deltas.
        mask_shape: (mh, mw) of the mask targets.
        use_mini_mask: bool, see ``gt_masks``.
        seed: what ``keras.random.uniform`` takes: None (unseeded; eager use only), an
            int (the same int gives the same sample) or a ``keras.random.SeedGenerator``
            (a new sample per call, reproducible from the generator's seed; what the
            layer uses, and what compiled JAX code needs).

    Returns:
        rois: float32 [B, T, 4] positives first (random order), then negatives, then
            zero padding.
        class_ids: int32 [B, T], class of the best-IoU non-crowd GT for positives, else 0.
        deltas: float32 [B, T, 4] ``encode_box_deltas(roi, gt) / bbox_std_dev`` for
            positives, else 0.
        masks: float32 [B, T, mh, mw] 0/1: the GT mask cropped to the ROI and resized
            (bilinear, rounded) for positives, else 0.
    """
    proposals = ops.cast(proposals, "float32")
    gt_class_ids = ops.cast(gt_class_ids, "int32")
    gt_boxes = ops.cast(gt_boxes, "float32")
    gt_masks = ops.cast(gt_masks, "float32")
    _check_shapes(proposals, gt_class_ids, gt_boxes, gt_masks)
    if not 0 < roi_positive_ratio <= 1:
        raise ValueError(f"detection_targets: roi_positive_ratio must be in (0, 1], "
                         f"got {roi_positive_ratio}")
    # One extra all-zero GT slot keeps G >= 1, so gathers and crops stay valid for
    # images (or batches) without ground truth; padding is ignored anyway.
    gt_class_ids = ops.pad(gt_class_ids, [[0, 0], [0, 1]])
    gt_boxes = ops.pad(gt_boxes, [[0, 0], [0, 1], [0, 0]])
    gt_masks = ops.pad(gt_masks, [[0, 0], [0, 0], [0, 0], [0, 1]])

    positive, negative, matched = match_proposals(proposals, gt_class_ids, gt_boxes)
    index, is_positive, is_selected = sample_rois(positive, negative, train_rois_per_image,
                                                  roi_positive_ratio, seed)
    rois = ops.where(is_selected[..., None],
                     ops.take_along_axis(proposals, index[..., None], axis=1), 0.0)
    gt_index = ops.take_along_axis(matched, index, axis=1)  # [B, T]
    roi_gt_boxes = ops.take_along_axis(gt_boxes, gt_index[..., None], axis=1)
    class_ids = ops.where(is_positive, ops.take_along_axis(gt_class_ids, gt_index, axis=1), 0)
    deltas = box_targets(rois, roi_gt_boxes, is_positive, bbox_std_dev)
    masks = mask_targets(rois, roi_gt_boxes, gt_index, gt_masks, is_positive, mask_shape,
                         use_mini_mask)
    return [ops.stop_gradient(t) for t in (rois, class_ids, deltas, masks)]
