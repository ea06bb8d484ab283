"""Shape templates: the categories of the procedural one-shot dataset.

A template is a category defined by shape alone (colour, size and position vary per
instance). It is a list of polygons in a *unit box*: coordinates ``(y, x)`` with the
template's filled extent centred on ``(0, 0)`` and its longer side exactly 1, so the
template spans ``[-0.5, 0.5]`` along that side. Polygons are applied in order: an
*additive* polygon sets pixels, a *subtractive* one clears them (holes, bites).

Families (the name prefix; the suffix is the template's index, e.g. ``star7_0123``):

- ``star{n}``: star polygon with ``n`` points and inner radius ratio 0.3-0.7;
- ``poly{k}``: regular ``k``-gon, possibly squashed along a random axis;
- ``convex{k}``: convex hull of ``k`` random points on an ellipse;
- ``blob{k}``: star-shaped concave polygon with ``k`` random radii;
- ``round``: superellipse ``|x|^p + |y|^p = 1`` (rounded squares, diamonds, ovals);
- ``ring``: a round shape or polygon with a hole (annulus-like);
- ``crescent``: a disc or oval with a bite taken out by a second one;
- ``compound``: union of 2-3 primitives (rectangles, discs, triangles) that overlap;
- ``grid``: union of 3-6 cells of a 3x3 grid (L, T, S, plus, ... shapes).

Distinctness: a candidate is rejected when its 32x32 raster has IoU above
``max_iou`` with any earlier template at any of the relative rotations
``rotation_tolerance * (-2, -1, 0, 1, 2) / 2`` (degrees), so two categories never
look alike under the rotation jitter instances get. Candidates that fall apart into
several pieces, fill less than 20% of their unit box, or have parts thinner than about 1/8 of their
side (see ``_acceptable``) are rejected too: they would break up at 16 pixels.

Templates are generated one after another from one random stream, so the first ``k``
templates of ``make_templates(n, seed)`` are the same for every ``n >= k``.

Shape shorthand: ``V`` polygon vertices, ``H, W`` raster height and width in pixels.
Raster coordinates are pixel centres: pixel ``(r, c)`` is filled when the point
``(r, c)`` lies inside the polygon (``skimage.draw.polygon``).
"""

import dataclasses
import functools

import numpy as np
import scipy.ndimage
import skimage.draw

# Family -> relative frequency among candidates.
FAMILIES = {"star": 0.14, "poly": 0.08, "convex": 0.1, "blob": 0.14, "round": 0.1,
            "ring": 0.1, "crescent": 0.06, "compound": 0.16, "grid": 0.12}

# Raster used to compare templates, and the template extent inside it (room for a
# 20-degree rotation: (cos 20 + sin 20) * 24 < 32).
_COMPARE_SIZE = 32
_COMPARE_SCALE = 24.0
# Raster used to measure the filled extent of a template with subtractive parts.
_NORMALISE_SIZE = 64
_MIN_FILL = 0.2
_THICKNESS_DISC = np.hypot(*np.mgrid[-3:4, -3:4]) <= 3.0


@dataclasses.dataclass(frozen=True, eq=False)
class Template:
    """One category: ``name``, ``family`` and ``parts``.

    ``parts`` is a tuple of ``(vertices, additive)``; ``vertices`` float64 [V, 2] are
    ``(y, x)`` in unit-box coordinates (see the module docstring).
    """

    name: str
    family: str
    parts: tuple

    def transformed_parts(self, center, scale, rotation=0.0):
        """Vertices in pixels: [(float64 [V, 2] (row, col), additive), ...].

        Args:
            center: (row, col) of the unit box centre, pixels.
            scale: pixel length of the unit box side (the template's longer extent).
            rotation: degrees, counter-clockwise as displayed (y axis pointing down).
        """
        offset = np.asarray(center, np.float64)
        return [(offset + scale * _rotate(verts, np.deg2rad(rotation)), add)
                for verts, add in self.parts]

    def rasterize(self, center, scale, rotation=0.0, shape=(32, 32)):
        """Filled pixels of one instance, bool [H, W] (clipped to the raster).

        Args: see :meth:`transformed_parts`; ``shape`` is (H, W).
        """
        mask = np.zeros(tuple(shape), dtype=bool)
        for verts, additive in self.transformed_parts(center, scale, rotation):
            rr, cc = skimage.draw.polygon(verts[:, 0], verts[:, 1], shape=mask.shape)
            mask[rr, cc] = additive
        return mask

    def thumbnail(self, size=32, rotation=0.0):
        """The template centred in a ``size`` x ``size`` raster at 75% of its side."""
        center = ((size - 1) / 2.0, (size - 1) / 2.0)
        return self.rasterize(center, 0.75 * size, rotation, (size, size))


# ---------------------------------------------------------------------- primitives
def _circle(n=40, ry=0.5, rx=0.5, cy=0.0, cx=0.0, phase=0.0):
    t = phase + np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([cy + ry * np.sin(t), cx + rx * np.cos(t)], axis=1)


def _regular(k, phase, squash=1.0, squash_angle=0.0):
    verts = _circle(k, phase=phase)
    return _squash(verts, squash, squash_angle)


def _squash(verts, factor, angle):
    """Scale ``verts`` by ``factor`` along the direction ``angle`` (radians)."""
    direction = np.array([np.sin(angle), np.cos(angle)])
    along = verts @ direction
    return verts + np.outer((factor - 1.0) * along, direction)


def _rotate(verts, angle):
    """Turn (y, x) vertices [V, 2] by ``angle`` radians, counter-clockwise as displayed.

    With y pointing down, that is y' = y cos - x sin, x' = y sin + x cos.
    """
    cos, sin = np.cos(angle), np.sin(angle)
    return verts @ np.array([[cos, -sin], [sin, cos]]).T


def _rectangle(h, w, cy=0.0, cx=0.0, angle=0.0):
    verts = np.array([[-h, -w], [-h, w], [h, w], [h, -w]]) / 2.0
    return _rotate(verts, angle) + [cy, cx]


def _superellipse(p, aspect, angle, n=48):
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    s, c = np.sin(t), np.cos(t)
    y = np.sign(s) * np.abs(s) ** (2.0 / p) * 0.5 * aspect
    x = np.sign(c) * np.abs(c) ** (2.0 / p) * 0.5
    return _rotate(np.stack([y, x], axis=1), angle)


# ---------------------------------------------------------------------- families
def _star(rng):
    n = int(rng.integers(3, 11))
    inner = rng.uniform(0.3, 0.6) if n < 7 else rng.uniform(0.4, 0.7)
    t = rng.uniform(0, np.pi / n) + np.arange(2 * n) * np.pi / n
    radius = np.where(np.arange(2 * n) % 2 == 0, 0.5, 0.5 * inner)
    verts = np.stack([radius * np.sin(t), radius * np.cos(t)], axis=1)
    return f"star{n}", [(verts, True)]


def _poly(rng):
    k = int(rng.integers(3, 9))
    squash = 1.0 if rng.random() < 0.4 else rng.uniform(0.45, 0.85)
    verts = _regular(k, rng.uniform(0, 2 * np.pi / k), squash, rng.uniform(0, np.pi))
    return f"poly{k}", [(verts, True)]


def _convex(rng):
    k = int(rng.integers(4, 9))
    t = np.sort(rng.uniform(0, 2 * np.pi, size=k))
    aspect = rng.uniform(0.5, 1.0)
    points = np.stack([0.5 * aspect * np.sin(t), 0.5 * np.cos(t)], axis=1)
    points = _rotate(points, rng.uniform(0, np.pi))
    # Points on an ellipse in angular order are already their convex hull.
    return f"convex{k}", [(points, True)]


def _blob(rng):
    k = int(rng.integers(5, 11))
    t = (np.arange(k) + rng.uniform(-0.3, 0.3, size=k)) * 2 * np.pi / k
    radius = rng.uniform(0.2, 0.5, size=k)
    radius[rng.integers(k)] = 0.5  # at least one full-length arm
    verts = np.stack([radius * np.sin(t), radius * np.cos(t)], axis=1)
    return f"blob{k}", [(verts, True)]


def _round(rng):
    p = float(np.exp(rng.uniform(np.log(0.8), np.log(5.0))))
    verts = _superellipse(p, rng.uniform(0.45, 1.0), rng.uniform(0, np.pi))
    return "round", [(verts, True)]


def _ring(rng):
    if rng.random() < 0.5:
        p = float(np.exp(rng.uniform(0.0, np.log(5.0))))
        aspect = rng.uniform(0.6, 1.0)
        outer = _superellipse(p, aspect, rng.uniform(0, np.pi))
        # Radius of the largest centred disc inside the superellipse (its diagonal
        # point for p < 2), relative to the half side.
        inradius = aspect * min(1.0, np.sqrt(2.0) * 2.0 ** (-1.0 / p))
    else:
        k = int(rng.integers(3, 8))
        outer = _regular(k, rng.uniform(0, 2 * np.pi / k))
        inradius = np.cos(np.pi / k)
    inner_scale = rng.uniform(0.35, 0.55)
    shift = rng.uniform(-0.04, 0.04, size=2)
    if rng.random() < 0.5:
        inner = outer * inner_scale + shift
    else:
        radius = 0.5 * inner_scale * inradius
        inner = _circle(32, radius, radius, *shift)
    return "ring", [(outer, True), (inner, False)]


def _crescent(rng):
    aspect = rng.uniform(0.7, 1.0)
    disc = _circle(40, 0.5 * aspect, 0.5)
    radius = rng.uniform(0.35, 0.5)
    angle = rng.uniform(0, 2 * np.pi)
    # The bite leaves at least 0.3 of the disc diameter at the crescent's thickest.
    distance = rng.uniform(max(0.25, radius - 0.2), 0.45)
    bite = _circle(40, radius, radius, distance * np.sin(angle), distance * np.cos(angle))
    return "crescent", [(disc, True), (bite, False)]


def _primitive(rng, cy, cx):
    kind = rng.integers(3)
    size = rng.uniform(0.3, 0.6)
    if kind == 0:
        return _rectangle(size, size * rng.uniform(0.25, 1.0), cy, cx, rng.uniform(0, np.pi))
    if kind == 1:
        return _circle(32, size / 2, size / 2, cy, cx)
    return _regular(3, rng.uniform(0, 2 * np.pi), 1.0) * size + [cy, cx]


def _compound(rng):
    count = int(rng.integers(2, 4))
    parts = [(_primitive(rng, 0.0, 0.0), True)]
    for _ in range(count - 1):
        # Centre the next primitive near an earlier one's centre so they overlap.
        anchor = parts[int(rng.integers(len(parts)))][0].mean(axis=0)
        offset = rng.uniform(-0.25, 0.25, size=2)
        parts.append((_primitive(rng, *(anchor + offset)), True))
    return "compound", parts


def _grid(rng):
    count = int(rng.integers(3, 7))
    cells = {(1, 1)} if rng.random() < 0.5 else {(0, 0)}
    while len(cells) < count:
        r, c = sorted(cells)[int(rng.integers(len(cells)))]
        dr, dc = ((0, 1), (1, 0), (0, -1), (-1, 0))[int(rng.integers(4))]
        if 0 <= r + dr < 3 and 0 <= c + dc < 3:
            cells.add((r + dr, c + dc))
    # Cells overlap by 4% of their side so that shared edges leave no unfilled seam.
    side = 1.04 / 3.0
    parts = [(_rectangle(side, side, (r - 1) / 3.0, (c - 1) / 3.0), True)
             for r, c in sorted(cells)]
    return "grid", parts


_FAMILY_MAKERS = {"star": _star, "poly": _poly, "convex": _convex, "blob": _blob,
                  "round": _round, "ring": _ring, "crescent": _crescent,
                  "compound": _compound, "grid": _grid}


# ---------------------------------------------------------------------- assembly
def _normalise(parts):
    """Move and scale ``parts`` so that the filled extent is centred with longer side 1.

    Returns None when the shape is empty. Without subtractive parts the extent is the
    vertex bounding box of the polygons; a subtractive part can cut that box down, so
    then the extent is measured on a 64x64 raster (error below 1/64 of the side).
    """
    additive = np.concatenate([v for v, add in parts if add])
    low, high = additive.min(axis=0), additive.max(axis=0)
    center, extent = (low + high) / 2.0, float(np.max(high - low))
    if extent <= 0:
        return None
    parts = tuple(((v - center) / extent, add) for v, add in parts)
    if all(add for _, add in parts):
        return parts
    size = _NORMALISE_SIZE
    raster = Template("", "", parts).rasterize(((size - 1) / 2.0,) * 2, size - 2.0,
                                               0.0, (size, size))
    rows, cols = np.nonzero(raster)
    if rows.size == 0:
        return None
    # Pixel centres sit half a pixel inside the covered area.
    lo = (np.array([rows.min(), cols.min()]) - 0.5 - (size - 1) / 2.0) / (size - 2.0)
    hi = (np.array([rows.max(), cols.max()]) + 0.5 - (size - 1) / 2.0) / (size - 2.0)
    center, extent = (lo + hi) / 2.0, float(np.max(hi - lo))
    return tuple(((v - center) / extent, add) for v, add in parts)


def _comparison_rasters(template, angles):
    """Bit-packed 32x32 rasters used for the IoU test, uint8 [len(angles), 128]."""
    center = ((_COMPARE_SIZE - 1) / 2.0,) * 2
    shape = (_COMPARE_SIZE, _COMPARE_SIZE)
    return np.packbits(np.stack([template.rasterize(center, _COMPARE_SCALE, a, shape).ravel()
                                 for a in angles]), axis=1)


def _packed_iou(bank, candidate):
    """IoU of each packed raster in ``bank`` [M, B] with one packed ``candidate`` [B].

    Popcounts instead of a float matrix product: no BLAS threads, which on a busy
    machine made a [M, 1024] x [1024] product the slowest step by far.
    """
    inter = np.bitwise_count(bank & candidate).sum(axis=1, dtype=np.int64)
    union = np.bitwise_count(bank | candidate).sum(axis=1, dtype=np.int64)
    return inter / np.maximum(union, 1)


def _acceptable(template):
    """One piece, not too sparse, and no part thinner than about 1/8 of the side.

    Thickness test: a morphological opening with a disc 1/8 of the extent across
    (6 of 48 pixels) keeps at least 85% of the area in one piece; thin arms,
    walls and slivers would vanish or break at 16-pixel instance sizes.
    """
    raster = template.thumbnail(64)
    _, pieces = scipy.ndimage.label(raster)
    area = raster.sum()
    if pieces != 1 or area / (0.75 * 64) ** 2 < _MIN_FILL:
        return False
    opened = scipy.ndimage.binary_opening(raster, structure=_THICKNESS_DISC)
    _, opened_pieces = scipy.ndimage.label(opened)
    return opened_pieces == 1 and opened.sum() >= 0.85 * area


def template_iou(a, b, rotation_tolerance=20.0):
    """Largest IoU of the 32x32 rasters of templates ``a`` and ``b``.

    ``b`` is tried at relative rotations ``rotation_tolerance * (-1, -0.5, 0, 0.5, 1)``
    degrees; the same measure :func:`make_templates` uses to reject near-duplicates.
    """
    angles = rotation_tolerance * np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    return float(_packed_iou(_comparison_rasters(b, angles),
                             _comparison_rasters(a, [0.0])[0]).max())


def make_templates(num_categories=200, seed=0, max_iou=0.75, rotation_tolerance=20.0):
    """Generate ``num_categories`` distinct shape templates, deterministic per ``seed``.

    Args:
        num_categories: templates wanted (>= 1).
        seed: int seed of the template stream (independent of any image seed).
        max_iou: a candidate whose raster IoU with an earlier template exceeds this
            (at any relative rotation within ``rotation_tolerance``) is rejected.
        rotation_tolerance: degrees; twice the rotation jitter instances receive.

    Returns:
        tuple of :class:`Template`; names are ``{family}_{index:04d}``, index 0-based.

    Raises:
        ValueError: bad arguments, or fewer than ``num_categories`` distinct
            templates were found within 200 candidates per template (lower the
            count or raise ``max_iou``).
    """
    return _make_templates_cached(int(num_categories), int(seed), float(max_iou),
                                  float(rotation_tolerance))


@functools.lru_cache(maxsize=8)
def _make_templates_cached(num_categories, seed, max_iou, rotation_tolerance):
    if num_categories < 1:
        raise ValueError(f"make_templates: num_categories must be >= 1, got {num_categories}")
    if not 0.0 < max_iou <= 1.0:
        raise ValueError(f"make_templates: max_iou must be in (0, 1], got {max_iou}")
    rng = np.random.default_rng([seed, 0x5EED])
    families = list(FAMILIES)
    weights = np.array([FAMILIES[f] for f in families])
    weights = weights / weights.sum()
    angles = rotation_tolerance * np.array([-1.0, -0.5, 0.0, 0.5, 1.0])

    templates = []
    bank = np.zeros((num_categories * len(angles), _COMPARE_SIZE ** 2 // 8), np.uint8)
    budget = 200 * num_categories
    for _ in range(budget):
        if len(templates) == num_categories:
            break
        family = families[rng.choice(len(families), p=weights)]
        label, parts = _FAMILY_MAKERS[family](rng)
        parts = _normalise(parts)
        if parts is None:
            continue
        candidate = Template(f"{label}_{len(templates):04d}", family, parts)
        # The IoU test against the bank is the cheapest filter, so it goes first.
        upright = _comparison_rasters(candidate, [0.0])[0]
        filled = len(templates) * len(angles)
        if filled:
            if _packed_iou(bank[:filled], upright).max() > max_iou:
                continue
        if not _acceptable(candidate):
            continue
        rasters = _comparison_rasters(candidate, angles)
        bank[filled:filled + len(angles)] = rasters
        templates.append(candidate)
    if len(templates) < num_categories:
        raise ValueError(f"make_templates: found only {len(templates)} distinct templates "
                         f"of the {num_categories} requested with max_iou={max_iou}; "
                         f"request fewer or raise max_iou")
    return tuple(templates)
