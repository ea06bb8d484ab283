"""Keras-2-style ("legacy") HDF5 weight files: save, load, and ImageNet conversion.

File layout (what Keras 2's ``save_weights(path.h5)`` wrote, and what Matterport's
Mask R-CNN and the original Siamese Mask R-CNN checkpoints contain):

- root attributes ``layer_names`` (bytes, one per top-level layer, in model order,
  layers without weights included), ``backend`` and ``keras_version``; a very long
  attribute is split into ``layer_names0``, ``layer_names1``, ... (HDF5 limits an
  object header to 64 KiB);
- one group per top-level layer with attribute ``weight_names`` (e.g.
  ``"conv1/kernel:0"``) and one dataset per weight at that (slash-nested) path;
- within a group: trainable weights first, then non-trainable, as they were when
  the file was written. A nested sub-model (``rpn_model``, ``resnet_model``,
  ``fpn_model``) is one group holding all its layers' weights, named
  ``"<inner layer>/<variable>:0"``: all trainable weights in layer order, then all
  non-trainable ones. That order depends on what was frozen at save time, so the
  loader matches weights by name. Keras 2 under TF1 named a weight after its
  variable scope, which the graph made unique: a layer built when its name was
  already taken stored ``conv1_1/kernel:0``; that suffix is ignored when no exact
  name matches. A weight that matches by no name is paired by order and reported
  (``LoadReport.by_order`` and a warning), never silently.

Files written by ``keras.Model.save()`` in Keras 2 (weights under a
``model_weights`` group) are read too. Keras 3's own ``.weights.h5`` format is a
different layout and is not handled here.
"""

import contextlib
import dataclasses
import logging
import os
import re

import h5py
import keras
import numpy as np

from mrcnn.files import atomic_path
from mrcnn.layers.backbone import RESNET_BLOCKS

logger = logging.getLogger(__name__)

# HDF5 refuses attributes whose object header exceeds 64 KiB; Keras 2 chunked them.
_HDF5_ATTR_LIMIT = 64512


class WeightFileError(ValueError):
    """A weight file is missing a required part, unreadable, or truncated."""


@dataclasses.dataclass
class LoadReport:
    """What :func:`load_weights` did, by top-level layer name.

    loaded: layers whose weights were set from the file.
    skipped: layers present in the file but not loaded (``exclude`` or, with
        ``skip_mismatch``, a shape/count mismatch).
    missing: model layers with weights that the file does not provide (by_name).
    unused: file layers with weights that the model does not have (by_name).
    by_order: what was paired by position, not by name, one string each: file
        layers paired with differently named model layers (``by_name=False``) and
        stored weights whose names match no weight of their layer.
    """

    filepath: str
    loaded: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    missing: list = dataclasses.field(default_factory=list)
    unused: list = dataclasses.field(default_factory=list)
    by_order: list = dataclasses.field(default_factory=list)

    def summary(self):
        return (f"{self.filepath}: loaded {len(self.loaded)} layers, skipped "
                f"{len(self.skipped)} {self.skipped}, missing in file {self.missing}, "
                f"unused from file {self.unused}"
                + (f", paired by order (names differ): {self.by_order}"
                   if self.by_order else ""))


# ----------------------------------------------------------------- model side
def _is_container(layer):
    return isinstance(layer, keras.Model) or bool(getattr(layer, "layers", None))


def layer_weight_entries(layer):
    """[(stored name, variable)] of one top-level layer, in the legacy file order.

    A plain layer: its trainable then non-trainable weights, named
    ``"<layer>/<var>:0"``. A nested model: every inner layer's trainable weights in
    layer order, then every non-trainable one, named ``"<inner layer>/<var>:0"``.
    A shared variable is listed once.
    """
    trainable, frozen, seen = [], [], set()

    def add(owner, variables, into):
        for v in variables:
            if id(v) not in seen:
                seen.add(id(v))
                into.append((f"{owner.name}/{v.name}:0", v))

    def visit(inner, parent_trainable):
        if _is_container(inner):
            for sub in inner.layers:
                visit(sub, parent_trainable and inner.trainable)
            return
        on = parent_trainable and inner.trainable
        for v in inner.weights:
            add(inner, [v], trainable if (on and v.trainable) else frozen)

    if _is_container(layer):
        visit(layer, True)
    else:
        add(layer, layer.trainable_weights, trainable)
        add(layer, layer.non_trainable_weights, frozen)
    return trainable + frozen


# ----------------------------------------------------------------- attributes
def _write_name_attr(group, name, values):
    """Store a list of strings as a bytes-array attribute, chunked like Keras 2."""
    data = np.asarray([v.encode("utf8") for v in values])
    chunks = 1
    parts = [data]
    while any(p.nbytes > _HDF5_ATTR_LIMIT for p in parts):
        chunks += 1
        if chunks > len(data):
            raise ValueError(f"attribute {name!r} of group {group.name!r}: a single "
                             f"name exceeds {_HDF5_ATTR_LIMIT} bytes")
        parts = np.array_split(data, chunks)
    if chunks == 1:
        group.attrs[name] = data
    else:
        for i, part in enumerate(parts):
            group.attrs[f"{name}{i}"] = part


def _read_name_attr(group, name):
    """Read a (possibly chunked) string-list attribute; None if absent."""
    def decode(values):
        return [v.decode("utf8") if isinstance(v, bytes) else str(v)
                for v in np.asarray(values).reshape(-1)]

    if name in group.attrs:
        return decode(group.attrs[name])
    if f"{name}0" not in group.attrs:
        return None
    out, i = [], 0
    while f"{name}{i}" in group.attrs:
        out.extend(decode(group.attrs[f"{name}{i}"]))
        i += 1
    return out


# ----------------------------------------------------------------- saving
def _stored(array, dtype):
    """``array`` as written: floating arrays cast to ``dtype`` when one is given,
    unless the cast would overflow (a BatchNorm moving variance of 1e5 is not a
    float16), in which case the array keeps its own type."""
    array = np.asarray(array)
    if dtype is not None and np.issubdtype(array.dtype, np.floating):
        with np.errstate(over="ignore"):
            cast = array.astype(dtype)
        if np.isfinite(cast).all() or not np.isfinite(array).all():
            return cast
    return array


@contextlib.contextmanager
def _atomic_h5(filepath):
    """An h5py.File open for writing that becomes ``filepath`` only when the block
    ends without an error (:func:`mrcnn.files.atomic_path`); the file gets the
    permissions the umask gives any new file, like ``config.json`` beside it."""
    directory = os.path.dirname(os.path.abspath(filepath))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save weights to {filepath}: directory "
                                f"{directory} does not exist")
    with atomic_path(filepath) as tmp:
        with h5py.File(tmp, "w") as f:
            yield f


def save_weights(model, filepath, dtype=None):
    """Write all weights of ``model`` as a legacy HDF5 weight file, atomically.

    One group per top-level layer of ``model`` (see the module docstring). The file
    is written to a temporary file in the same directory and moved into place with
    ``os.replace``, so an interrupted save leaves any previous ``filepath`` intact.
    ``dtype`` (e.g. "float16") stores floating weights in that type, halving a
    float32 file (arrays the cast would overflow keep their type);
    :func:`load_weights` casts back to the model's variables.
    """
    with _atomic_h5(filepath) as f:
        _write_name_attr(f, "layer_names", [layer.name for layer in model.layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = str(keras.__version__).encode("utf8")
        for layer in model.layers:
            group = f.create_group(layer.name)
            entries = layer_weight_entries(layer)
            names = [name for name, _ in entries]
            if len(set(names)) != len(names):
                dupes = sorted({n for n in names if names.count(n) > 1})
                raise ValueError(f"cannot save {filepath}: layer {layer.name!r} has "
                                 f"several weights named {dupes}")
            _write_name_attr(group, "weight_names", names)
            for name, variable in entries:
                group.create_dataset(
                    name, data=_stored(keras.ops.convert_to_numpy(variable), dtype))


def convert_weight_file(source, target, dtype="float16"):
    """Copy the weight file ``source`` to ``target`` with floating weights as ``dtype``.

    Groups, attributes and the order of everything are kept, so the copy loads
    wherever the original does (by name or by order). Written atomically; returns
    (bytes of source, bytes of target). Used to ship small checkpoints: float16
    keeps about 3 significant digits of each weight; an array with values beyond
    the type's range keeps its own type.
    """
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"convert_weight_file: dtype must be a floating type, got {dtype}")
    with _open_weight_file(source) as src, _atomic_h5(target) as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value

        def copy(name, obj):
            if isinstance(obj, h5py.Group):
                group = dst.require_group(name)
            else:
                group = dst.create_dataset(name, data=_stored(obj[()], dtype))
            for key, value in obj.attrs.items():
                group.attrs[key] = value

        src.visititems(copy)
    return os.path.getsize(os.fspath(source)), os.path.getsize(os.fspath(target))


# ----------------------------------------------------------------- loading
def _weight_key(stored_name):
    """Stored name -> "<layer>/<var>": "resnet_model/conv1/kernel:0" -> "conv1/kernel"."""
    parts = re.sub(r":\d+$", "", stored_name).split("/")
    return "/".join(parts[-2:])


def _without_scope_suffix(stored_name):
    """"<layer>/<var>" with Keras 2's scope uniquifier dropped: "conv1_1/kernel"."""
    layer, _, variable = _weight_key(stored_name).rpartition("/")
    return f"{re.sub(r'_[0-9]+$', '', layer)}/{variable}"


def _pair_weights(model_names, stored_names, by_order=None):
    """Index into ``model_names`` for each stored weight.

    First exact "<layer>/<var>" matches, then (for what is left) the same without
    Keras 2's "_<n>" scope suffix on either side, then, for a single layer (not a
    nested model), a unique variable name (a layer saved under another name, e.g.
    TimeDistributed's inner layer), then the remaining ones in order; the
    (stored, model) names of those are appended to ``by_order`` when given.
    """
    pairing = [None] * len(stored_names)
    used = set()
    key_fns = [_weight_key, _without_scope_suffix]
    if len({_weight_key(n).split("/")[0] for n in model_names}) == 1:
        # One layer (not a nested model): its variable names alone identify it.
        key_fns.append(lambda n: _weight_key(n).split("/")[-1])
    for key_fn in key_fns:
        model_keys = [key_fn(n) for n in model_names]
        stored_keys = [key_fn(n) if pairing[j] is None else None
                       for j, n in enumerate(stored_names)]
        free = [k if i not in used else None for i, k in enumerate(model_keys)]
        for j, key in enumerate(stored_keys):
            if key is None or stored_keys.count(key) != 1 or free.count(key) != 1:
                continue
            i = free.index(key)
            pairing[j] = i
            used.add(i)
    rest = [i for i in range(len(model_names)) if i not in used]
    for j in range(len(stored_names)):
        if pairing[j] is None:
            pairing[j] = rest.pop(0)
            if by_order is not None:
                by_order.append((stored_names[j], model_names[pairing[j]]))
    return pairing


def _read_file_layers(root, filepath):
    """[(layer name, [(stored weight name, array)])] for file layers with weights."""
    layer_names = _read_name_attr(root, "layer_names")
    if layer_names is None:
        raise WeightFileError(f"{filepath}: no 'layer_names' attribute; not a Keras-2 "
                              f"style HDF5 weight file")
    out = []
    for name in layer_names:
        if name not in root:
            raise WeightFileError(f"{filepath}: layer {name!r} is listed in layer_names "
                                  f"but has no group (truncated or corrupt file?)")
        group = root[name]
        weight_names = _read_name_attr(group, "weight_names") or []
        values = []
        for weight_name in weight_names:
            try:
                values.append((weight_name, np.asarray(group[weight_name])))
            except (KeyError, OSError, ValueError) as e:
                raise WeightFileError(f"{filepath}: cannot read weight {weight_name!r} of "
                                      f"layer {name!r} (truncated or corrupt file?): {e}"
                                      ) from None
        if values:
            out.append((name, values))
    return out


def _open_weight_file(filepath):
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"weight file not found: {filepath}")
    try:
        return h5py.File(filepath, "r")
    except OSError as e:
        raise WeightFileError(f"{filepath}: not a readable HDF5 weight file "
                              f"(truncated or corrupt?): {e}") from None


def load_weights(model, filepath, by_name=False, exclude=None, skip_mismatch=False):
    """Load a legacy HDF5 weight file into ``model`` (a keras.Model or sub-model).

    Args:
        model: the target; its top-level layers are matched with the file's groups.
        filepath: a file of the layout in the module docstring (ours, Matterport's,
            the original Siamese project's, Keras 2 ``save_weights``/``save``).
        by_name: False: the file's layers with weights are paired in order with the
            model's layers with weights (the counts must agree); when both hold
            exactly the same layer names they are paired by name instead, so a file
            whose layers are listed in another topological order (training vs
            inference graph) cannot swap same-shaped layers. True: pair by
            top-level layer name; file layers the model lacks are ignored.
        exclude: top-level layer names not to load (left untouched).
        skip_mismatch: warn and skip a layer whose weight count or shapes differ,
            instead of raising ValueError.

    Inside a layer, weights are matched by stored name ("<layer>/<var>", robust to a
    nesting prefix), falling back to order. Nothing is assigned unless the whole
    file is consistent with the model (or the inconsistent layers are skipped).

    Returns: a :class:`LoadReport`.
    Raises: FileNotFoundError (missing file), WeightFileError (unreadable/corrupt),
        ValueError (layer count, weight count or shape mismatch, naming the layer,
        the weight, the file and both shapes).
    """
    filepath = os.fspath(filepath)
    exclude = set(exclude or [])
    report = LoadReport(filepath=filepath)
    with _open_weight_file(filepath) as f:
        root = f
        if _read_name_attr(f, "layer_names") is None and "model_weights" in f:
            root = f["model_weights"]
        file_layers = _read_file_layers(root, filepath)

    targets = [layer for layer in model.layers if layer_weight_entries(layer)]
    file_names = [name for name, _ in file_layers]
    if by_name and model.name in file_names and model.name not in \
            {layer.name for layer in targets} and not set(file_names) & \
            {layer.name for layer in targets}:
        # The file holds this model as one nested group (an ImageNet classifier
        # saved around its "resnet_model"): load that group into the model itself.
        values = dict(file_layers)[model.name]
        assignments = _layer_assignments(model, model.name, values, filepath, report)
        for variable, value in assignments:
            variable.assign(value.astype(variable.dtype, copy=False))
        report.loaded = [model.name]
        report.unused = [name for name in file_names if name != model.name]
        logger.info("%s", report.summary())
        return report
    if by_name:
        by_layer_name = {layer.name: layer for layer in targets}
        pairs = [(by_layer_name[name], name, values) for name, values in file_layers
                 if name in by_layer_name]
        report.unused = [name for name, _ in file_layers if name not in by_layer_name]
        in_file = {name for name, _ in file_layers}
        report.missing = [layer.name for layer in targets if layer.name not in in_file]
    else:
        if len(file_layers) != len(targets):
            raise ValueError(
                f"{filepath}: the file has {len(file_layers)} layers with weights but "
                f"model {model.name!r} has {len(targets)}; load with by_name=True to match "
                f"layers by name")
        file_names = [name for name, _ in file_layers]
        if sorted(file_names) == sorted(layer.name for layer in targets):
            # Same layers, possibly listed in another order (e.g. a training-mode
            # checkpoint loaded into the inference graph): pairing by position would
            # silently swap same-shaped layers such as mrcnn_mask_conv2/conv3.
            by_layer_name = {layer.name: layer for layer in targets}
            pairs = [(by_layer_name[name], name, values) for name, values in file_layers]
        else:
            # Keras 2's by_name=False: layers in order. Reported, as names differ.
            pairs = [(layer, name, values)
                     for layer, (name, values) in zip(targets, file_layers)]
            report.by_order += [f"file layer {name!r} -> model layer {layer.name!r}"
                                for layer, name, _ in pairs if layer.name != name]

    assignments = []
    for layer, file_layer_name, values in pairs:
        if layer.name in exclude:
            report.skipped.append(layer.name)
            continue
        try:
            assignments.extend(_layer_assignments(layer, file_layer_name, values, filepath,
                                                  report))
        except ValueError as e:
            if not skip_mismatch:
                raise
            logger.warning("skipping layer %r: %s", layer.name, e)
            report.skipped.append(layer.name)
            continue
        report.loaded.append(layer.name)
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype, copy=False))
    if report.by_order:
        logger.warning("%s: paired by order because the names differ: %s", filepath,
                       "; ".join(report.by_order))
    logger.info("%s", report.summary())
    return report


def _layer_assignments(layer, file_layer_name, values, filepath, report=None):
    """[(variable, array)] for one layer, or ValueError naming what does not fit.
    Weights paired by order are added to ``report.by_order``."""
    entries = layer_weight_entries(layer)
    stored_names = [name for name, _ in values]
    if len(entries) != len(values):
        raise ValueError(
            f"{filepath}: layer {file_layer_name!r} has {len(values)} weights in the file "
            f"but model layer {layer.name!r} has {len(entries)} "
            f"(file: {stored_names}; model: {[n for n, _ in entries]})")
    by_order = []
    pairing = _pair_weights([name for name, _ in entries], stored_names, by_order)
    if report is not None and len(by_order) and len(entries) > 1:
        # A one-weight layer pairs by order trivially; anything larger is reported.
        report.by_order += [f"layer {file_layer_name!r}: file weight {stored!r} -> "
                            f"{model!r}" for stored, model in by_order]
    out = []
    for (stored_name, value), index in zip(values, pairing):
        model_name, variable = entries[index]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"{filepath}: layer {layer.name!r}, weight {stored_name!r} has shape "
                f"{tuple(value.shape)} in the file but the model's {model_name!r} has "
                f"shape {tuple(variable.shape)}")
        out.append((variable, value))
    return out


# ----------------------------------------------------------------- ImageNet ResNet
def keras_applications_layer_names(architecture):
    """{our layer name: keras.applications ResNet layer name} for the backbone."""
    if architecture not in RESNET_BLOCKS:
        raise ValueError(f"architecture must be one of {sorted(RESNET_BLOCKS)}, "
                         f"got {architecture!r}")
    names = {"conv1": "conv1_conv", "bn_conv1": "conv1_bn"}
    for stage, blocks in zip((2, 3, 4, 5), RESNET_BLOCKS[architecture]):
        for index in range(blocks):
            letter = chr(ord("a") + index)
            theirs = f"conv{stage}_block{index + 1}"
            branches = [("1", "2a"), ("2", "2b"), ("3", "2c")]
            if index == 0:
                branches.append(("0", "1"))  # the projection shortcut
            for their_conv, our_branch in branches:
                names[f"res{stage}{letter}_branch{our_branch}"] = f"{theirs}_{their_conv}_conv"
                names[f"bn{stage}{letter}_branch{our_branch}"] = f"{theirs}_{their_conv}_bn"
    return names


def convert_resnet_from_keras_applications(app_model, architecture):
    """{our layer name: [weights]} from a keras.applications ResNet50/ResNet101.

    Convs give [kernel, bias], BatchNorms [gamma, beta, moving_mean,
    moving_variance], the order of our layers' weights. Raises ValueError when
    ``app_model`` lacks a needed layer or has more residual blocks than
    ``architecture`` (e.g. a ResNet101 converted as "resnet50").
    """
    names = keras_applications_layer_names(architecture)
    app_layers = {layer.name: layer for layer in app_model.layers}
    expected = set(names.values())
    extra = sorted(n for n in app_layers if re.fullmatch(r"conv\d_block\d+_\d_(conv|bn)", n)
                   and n not in expected)
    if extra:
        raise ValueError(f"keras.applications model {app_model.name!r} has layers "
                         f"{extra[:4]}... that a {architecture} does not; wrong architecture?")
    out = {}
    for ours, theirs in names.items():
        if theirs not in app_layers:
            raise ValueError(f"keras.applications model {app_model.name!r} has no layer "
                             f"{theirs!r} (needed for {ours!r}); is it a {architecture}?")
        out[ours] = [np.array(keras.ops.convert_to_numpy(w))
                     for w in app_layers[theirs].weights]
    return out


def _leaf_layers_by_name(model):
    found = {}

    def visit(layer):
        if _is_container(layer):
            for inner in layer.layers:
                visit(inner)
        else:
            found.setdefault(layer.name, layer)

    visit(model)
    return found


def load_resnet_from_keras_applications(target, app_model, architecture):
    """Copy a keras.applications ResNet's weights into our backbone layers.

    ``target``: any model containing our layer names (conv1, bn_conv1, res2a_branch2a,
    ...), at top level or inside nested sub-models such as ``resnet_model``.
    Returns the list of layer names set. Raises ValueError naming a missing layer or
    a shape mismatch.
    """
    weights = convert_resnet_from_keras_applications(app_model, architecture)
    layers = _leaf_layers_by_name(target)
    missing = [name for name in weights if name not in layers]
    if missing:
        raise ValueError(f"model {target.name!r} lacks backbone layers {missing[:5]} "
                         f"({len(missing)} missing) of a {architecture}")
    for name, values in weights.items():
        try:
            layers[name].set_weights(values)
        except ValueError as e:
            raise ValueError(f"layer {name!r} of model {target.name!r}: cannot take the "
                             f"keras.applications weights: {e}") from None
    return list(weights)
