"""Detection targets: sample training ROIs from proposals and build their targets.

Shape shorthand: ``B`` batch, ``N`` proposals per image, ``G`` ground-truth slots,
``T`` training ROIs per image, ``h, w`` stored mask size (mini mask or image),
``mh, mw`` target mask size. Boxes are normalised (y1, x1, y2, x2); zero rows are
padding. Ground-truth class ids are int (0 padding, > 0 instance, < 0 crowd region).

The whole batch is sampled at once: random keys are drawn for every proposal, keys of
ineligible proposals are pushed below all others, and a descending sort gives each
image a random order of its eligible proposals; per-image counts then pick a prefix.
"""

import tensorflow as tf

from mrcnn.ops.boxes import box_overlaps, encode_box_deltas

POSITIVE_IOU = 0.5
# Proposals overlapping a crowd box by this much are ambiguous: never negatives.
CROWD_IOU = 0.001


def _uniform_keys(shape, seed):
    """Uniform [0, 1) keys: stateful without a seed, a pure function of ``seed`` with one."""
    if seed is None:
        return tf.random.uniform(shape)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.constant(0, tf.int64)])
    return tf.random.stateless_uniform(shape, seed=seed)


def _random_order(eligible, keys):
    """Indices [B, N] that list each image's eligible entries first, in random order."""
    return tf.argsort(tf.where(eligible, keys, -1.0), axis=-1, direction="DESCENDING")


def _check_shapes(proposals, gt_class_ids, gt_boxes, gt_masks):
    checks = [("proposals", proposals, 3), ("gt_class_ids", gt_class_ids, 2),
              ("gt_boxes", gt_boxes, 3), ("gt_masks", gt_masks, 4)]
    for name, tensor, rank in checks:
        if tensor.shape.rank is not None and tensor.shape.rank != rank:
            raise ValueError(f"detection_targets: {name} must have rank {rank}, "
                             f"got shape {tensor.shape}")
    slots = {gt_class_ids.shape[1], gt_boxes.shape[1], gt_masks.shape[3]} - {None}
    if len(slots) > 1:
        raise ValueError(
            f"detection_targets: ground-truth slot counts differ: gt_class_ids "
            f"{gt_class_ids.shape}, gt_boxes {gt_boxes.shape}, gt_masks {gt_masks.shape} "
            f"(masks are [B, h, w, G])")


def detection_targets(proposals, gt_class_ids, gt_boxes, gt_masks, train_rois_per_image,
                      roi_positive_ratio, bbox_std_dev, mask_shape, use_mini_mask, seed=None):
    """Sample T ROIs per image and build their class, box and mask targets.

    Zero-padded proposals and ground truth are ignored. Crowd boxes (negative class id)
    are never targets, and a proposal with IoU >= 0.001 with a crowd box is never a
    negative. Positives have IoU >= 0.5 with some non-crowd GT; negatives have max IoU
    < 0.5. Up to ``int(T * roi_positive_ratio)`` positives are drawn at random, then
    ``int(1 / roi_positive_ratio * P) - P`` negatives (P = positives drawn; float32
    arithmetic, Matterport's rule, so no positive means no negative), at most the
    remaining slots. GT boxes are not added to the proposals.

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
        seed: None (stateful random ops, follow ``tf.random.set_seed``) or an int /
            int tensor [2]: stateless sampling, the same seed gives the same sample.

    Returns:
        rois: float32 [B, T, 4] positives first (random order), then negatives, then
            zero padding.
        class_ids: int32 [B, T], class of the best-IoU non-crowd GT for positives, else 0.
        deltas: float32 [B, T, 4] ``encode_box_deltas(roi, gt) / bbox_std_dev`` for
            positives, else 0.
        masks: float32 [B, T, mh, mw] 0/1: the GT mask cropped to the ROI and resized
            (bilinear, rounded) for positives, else 0.
    """
    proposals = tf.cast(proposals, tf.float32)
    gt_class_ids = tf.cast(gt_class_ids, tf.int32)
    gt_boxes = tf.cast(gt_boxes, tf.float32)
    gt_masks = tf.cast(gt_masks, tf.float32)
    _check_shapes(proposals, gt_class_ids, gt_boxes, gt_masks)
    if not 0 < roi_positive_ratio <= 1:
        raise ValueError(f"detection_targets: roi_positive_ratio must be in (0, 1], "
                         f"got {roi_positive_ratio}")
    num_rois = int(train_rois_per_image)
    max_positives = int(num_rois * roi_positive_ratio)
    mask_h, mask_w = (int(v) for v in mask_shape)

    # One extra all-zero GT slot keeps G >= 1, so gathers and crops stay valid for
    # images (or batches) without ground truth; padding is ignored anyway.
    gt_class_ids = tf.pad(gt_class_ids, [[0, 0], [0, 1]])
    gt_boxes = tf.pad(gt_boxes, [[0, 0], [0, 1], [0, 0]])
    gt_masks = tf.pad(gt_masks, [[0, 0], [0, 0], [0, 0], [0, 1]])

    proposal_valid = tf.reduce_any(tf.not_equal(proposals, 0.0), axis=-1)  # [B, N]
    gt_valid = tf.reduce_any(tf.not_equal(gt_boxes, 0.0), axis=-1) & (gt_class_ids != 0)
    crowd = gt_valid & (gt_class_ids < 0)
    instance = gt_valid & (gt_class_ids > 0)

    overlaps = box_overlaps(proposals, gt_boxes)  # [B, N, G]
    instance_overlaps = tf.where(instance[:, None, :], overlaps, -1.0)
    roi_iou = tf.reduce_max(instance_overlaps, axis=-1)
    roi_gt = tf.argmax(instance_overlaps, axis=-1, output_type=tf.int32)
    crowd_iou = tf.reduce_max(tf.where(crowd[:, None, :], overlaps, 0.0), axis=-1)
    positive = proposal_valid & (roi_iou >= POSITIVE_IOU)
    negative = proposal_valid & (roi_iou < POSITIVE_IOU) & (crowd_iou < CROWD_IOU)

    # ---- sampling: counts per image, then prefixes of random orders
    keys = _uniform_keys(tf.concat([[2], tf.shape(positive)], axis=0), seed)
    positive_order = _random_order(positive, keys[0])
    negative_order = _random_order(negative, keys[1])
    positive_count = tf.minimum(
        tf.reduce_sum(tf.cast(positive, tf.int32), axis=-1), max_positives)  # [B]
    negative_count = tf.cast(
        tf.constant(1.0 / roi_positive_ratio, tf.float32) * tf.cast(positive_count, tf.float32),
        tf.int32) - positive_count
    negative_count = tf.minimum(negative_count, tf.reduce_sum(tf.cast(negative, tf.int32), -1))
    negative_count = tf.clip_by_value(negative_count, 0, num_rois - positive_count)

    # Orders are N long; pad so that T slots can always be read.
    short = tf.maximum(num_rois - tf.shape(positive_order)[1], 0)
    positive_order = tf.pad(positive_order, [[0, 0], [0, short]])[:, :num_rois]
    negative_order = tf.pad(negative_order, [[0, 0], [0, short]])[:, :num_rois]
    slot = tf.range(num_rois)[None, :]  # [1, T]
    is_positive = slot < positive_count[:, None]
    is_negative = ~is_positive & (slot < (positive_count + negative_count)[:, None])
    negative_slot = tf.maximum(slot - positive_count[:, None], 0)
    roi_index = tf.where(is_positive, positive_order,
                         tf.gather(negative_order, negative_slot, batch_dims=1))  # [B, T]
    selected = is_positive | is_negative

    rois = tf.where(selected[..., None], tf.gather(proposals, roi_index, batch_dims=1), 0.0)
    gt_index = tf.gather(roi_gt, roi_index, batch_dims=1)  # [B, T]
    roi_gt_boxes = tf.gather(gt_boxes, gt_index, batch_dims=1)
    class_ids = tf.where(is_positive, tf.gather(gt_class_ids, gt_index, batch_dims=1), 0)

    # ---- box targets; a unit box stands in for rows without a target to avoid NaN
    unit_box = tf.constant([0.0, 0.0, 1.0, 1.0])
    positive_box = is_positive[..., None]
    deltas = encode_box_deltas(tf.where(positive_box, rois, unit_box),
                               tf.where(positive_box, roi_gt_boxes, unit_box))
    deltas = deltas / tf.constant(bbox_std_dev, tf.float32)
    deltas = tf.where(positive_box, deltas, 0.0)

    # ---- mask targets: crop each positive's GT mask to the ROI
    batch = tf.shape(gt_masks)[0]
    num_slots = tf.shape(gt_masks)[3]
    # [B, h, w, G] -> [B * G, h, w, 1]: one image per (batch, GT slot) for crop_and_resize
    mask_images = tf.reshape(tf.transpose(gt_masks, [0, 3, 1, 2]),
                             tf.stack([-1, tf.shape(gt_masks)[1], tf.shape(gt_masks)[2], 1]))
    mask_index = tf.range(batch)[:, None] * num_slots + gt_index  # [B, T]
    if use_mini_mask:
        # A mini mask spans its GT box: express the ROI in that box's frame.
        y1, x1, y2, x2 = tf.unstack(rois, axis=-1)
        gy1, gx1, gy2, gx2 = tf.unstack(roi_gt_boxes, axis=-1)
        gt_h = tf.where(gy2 - gy1 > 0, gy2 - gy1, 1.0)
        gt_w = tf.where(gx2 - gx1 > 0, gx2 - gx1, 1.0)
        crop_boxes = tf.stack([(y1 - gy1) / gt_h, (x1 - gx1) / gt_w,
                               (y2 - gy1) / gt_h, (x2 - gx1) / gt_w], axis=-1)
    else:
        crop_boxes = rois
    crop_boxes = tf.where(positive_box, crop_boxes, 0.0)
    crops = tf.image.crop_and_resize(mask_images, tf.reshape(crop_boxes, [-1, 4]),
                                     tf.reshape(mask_index, [-1]), (mask_h, mask_w),
                                     method="bilinear")
    masks = tf.round(tf.reshape(crops, tf.stack([batch, num_rois, mask_h, mask_w])))
    masks = tf.where(is_positive[:, :, None, None], masks, 0.0)

    batch_dim = proposals.shape[0]
    rois.set_shape([batch_dim, num_rois, 4])
    class_ids.set_shape([batch_dim, num_rois])
    deltas.set_shape([batch_dim, num_rois, 4])
    masks.set_shape([batch_dim, num_rois, mask_h, mask_w])
    outputs = [rois, class_ids, deltas, masks]
    return [tf.stop_gradient(t) for t in outputs]
