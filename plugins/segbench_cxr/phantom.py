"""Procedural PA chest X-ray phantoms with lung and infection masks.

`render_phantom` draws one radiograph from an RNG seeded by a stable hash of
(seed, split, index). Geometry lives in continuous chest coordinates
([-1, 1]², x to the image right = patient's left, y down) and every random draw
has a fixed shape, so the same phantom rendered at 64 and 128 pixels shows the
same anatomy; only the pixel noise differs.

Image formation: a density map (soft tissue + bone + heart - lung air +
opacities) goes through an exposure curve 1 - exp(-k·density), a window and a
gamma, then blur and noise. Opacities add density to lung tissue, so an
infected lung reaches the grey levels of ribs, breast shadows and soft tissue:
intensity alone does not separate infection.

`PhantomSource` serves the phantoms as the cxr-phantom dataset.
"""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from segbench import DatasetOptions, SegbenchError
from segbench.samples import numbered_ids, numbered_index
from segbench.seeds import stable_digest
from segbench.errors import unknown

GENERATOR_VERSION = 1
"""Bump whenever the rendered pixels change, so cached datasets are rebuilt."""

DATASET_SEED = 0
SPLIT_SIZES = {"train": 480, "val": 64, "test": 96}
TASKS = ("lung", "infection")
INFECTED_FRACTION = 0.5


class PhantomSource:
    """cxr-phantom: `render_phantom` samples "<split>/<index>", rendered at the run size.

    The content seed is the constant DATASET_SEED, not the run's `--seed`: a
    different run seed changes training randomness, never the data, so runs
    with different seeds are evaluated on the same images.
    """

    def __init__(
        self,
        task: str,
        size: int = 64,
        *,
        seed: int = DATASET_SEED,
        train: int = SPLIT_SIZES["train"],
        val: int = SPLIT_SIZES["val"],
        test: int = SPLIT_SIZES["test"],
    ) -> None:
        if task not in TASKS:
            raise unknown("task", task, TASKS)
        if size < 32:
            raise SegbenchError(f"cxr-phantom renders at sizes >= 32, not {size}")
        self.task, self.size, self.seed = task, size, seed
        self.split_sizes = {"train": train, "val": val, "test": test}
        self._infected: dict[str, bool] = {}  # sample id -> infection present, from `load`

    @classmethod
    def from_options(cls, options: DatasetOptions) -> PhantomSource:
        return cls(options.task, options.size)

    def _count(self, split: str) -> int:
        if split not in self.split_sizes:
            raise unknown("split", split, self.split_sizes)
        return self.split_sizes[split]

    def sample_ids(self, split: str) -> list[str]:
        return numbered_ids(split, self._count(split))

    def load(self, split: str, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(image float32 (size, size) in [0, 1], mask uint8 (size, size) in {0, 1}) for the task."""
        index = numbered_index(sample_id, split, self._count(split), "cxr-phantom")
        image, lung, infection = render_phantom(self.seed, index, self.size, split)
        self._infected[sample_id] = bool(infection.any())
        return image, lung if self.task == "lung" else infection

    def metadata(self, split: str, sample_id: str) -> dict[str, str]:
        """{"infection": "present" or "absent"}: whether the phantom's infection mask has foreground (for the
        lung task too). Kept from `load`, which renders the phantom; rendered here when not loaded yet."""
        if sample_id not in self._infected:
            self.load(split, sample_id)
        return {"infection": "present" if self._infected[sample_id] else "absent"}

    def fingerprint(self, split: str) -> str:
        key = [GENERATOR_VERSION, self.seed, split, self._count(split), self.size, self.task]
        return hashlib.blake2b(json.dumps(key).encode(), digest_size=16).hexdigest()


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """A generator seeded from segbench's stable derivation (unlike `hash()`, the same in every process)."""
    return np.random.default_rng(int.from_bytes(stable_digest(seed, split, index, size=16, separator="/"), "little"))


def render_phantom(
    seed: int, index: int, size: int, split: str = "train"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One phantom: (image float32 (size, size) in [0, 1], lung uint8 {0, 1}, infection uint8 {0, 1}).

    The infection mask lies inside the lung mask and is empty for about half
    the phantoms. Any size >= 32 works.
    """
    if size < 32:
        raise ValueError(f"phantom size must be >= 32, got {size}")
    rng = sample_rng(seed, split, index)
    centres = (np.arange(size) + 0.5) * (2.0 / size) - 1.0
    gx, gy = np.meshgrid(centres, centres)
    pixel = 2.0 / size

    # Patient positioning: shift, scale and a slight tilt of the whole chest.
    angle = np.deg2rad(rng.normal(0.0, 2.5))
    scale = rng.uniform(0.9, 1.04)
    shift = rng.normal(0.0, 0.03, 2)
    x, y = _rotate(gx - shift[0], gy - shift[1], angle)
    x, y = x / scale, y / scale
    edge = pixel / scale  # one pixel, in chest coordinates

    anatomy = _draw_anatomy(rng)
    regions = _regions(x, y, anatomy)
    lung_soft = _ramp(regions.lung, edge)
    lung = regions.lung > 0

    density = _soft_tissue(x, y, anatomy, edge)
    density += _bones(x, y, anatomy, rng, edge)
    density += _heart_and_abdomen(x, y, anatomy, regions, edge)
    air = anatomy["air"] * (0.78 + 0.22 * _unit((y - anatomy["apex"]) / 0.35))
    density -= air * lung_soft
    density += _lung_markings(gx, gy, x, y, anatomy, rng) * lung_soft
    density += _extras(x, y, anatomy, rng, edge)

    infection = np.zeros((size, size), dtype=bool)
    if rng.random() < INFECTED_FRACTION:
        opacity, extent = _opacities(gx, gy, x, y, anatomy, rng)
        density += opacity * lung_soft
        infection = (extent > 0) & lung

    image = _expose(density, gx, gy, rng, size)
    return image, lung.astype(np.uint8), infection.astype(np.uint8)


# --- anatomy -----------------------------------------------------------------


def _draw_anatomy(rng: np.random.Generator) -> dict[str, float | np.ndarray]:
    """Per-patient shape parameters; index 0 is the right lung (image left), 1 the left."""
    apex = rng.uniform(-0.74, -0.6)
    left_base = rng.uniform(0.5, 0.66)
    # The right hemidiaphragm sits higher (the liver beneath it).
    bases = np.array([left_base - rng.uniform(0.0, 0.08), left_base])
    return {
        "apex": apex,
        "tops": apex + rng.uniform(-0.03, 0.03, 2),
        "bases": bases,
        "medial": rng.uniform(0.04, 0.08, 2),
        "widths": np.array([rng.uniform(0.66, 0.76), rng.uniform(0.62, 0.72)]),
        "apex_at": rng.uniform(0.2, 0.32, 2),
        "domes": rng.uniform(0.1, 0.2, 2),
        "dome_peak": rng.uniform(0.35, 0.55, 2),
        "wobble": rng.uniform(-0.04, 0.04, (2, 2)),
        "wobble_phase": rng.uniform(0.0, 2 * np.pi, (2, 2)),
        "tilts": np.deg2rad(rng.normal(0.0, 3.0, 2)),
        "mid": rng.uniform(-0.02, 0.03),
        "mediastinum": rng.uniform(0.09, 0.13),
        "heart": np.array(
            [
                rng.uniform(0.1, 0.17),  # centre x: shifted to the patient's left
                left_base - rng.uniform(0.2, 0.28),  # centre y: resting on the diaphragm
                rng.uniform(0.36, 0.44),  # semi-axis along its long axis
                rng.uniform(0.24, 0.3),  # semi-axis across
                np.deg2rad(rng.uniform(15.0, 35.0)),  # long axis runs down towards the left
            ]
        ),
        "body": rng.uniform(0.86, 0.97),
        "air": rng.uniform(0.62, 0.8),
    }


class Regions(NamedTuple):
    """Approximate signed distances (> 0 inside), each shaped like the x, y they were drawn at."""

    lung: np.ndarray  # the visible lung fields
    abdomen: np.ndarray  # below the diaphragm
    heart: np.ndarray
    mediastinum: np.ndarray


def _regions(x: np.ndarray, y: np.ndarray, a: dict) -> Regions:
    """Lung fields, abdomen, heart and mediastinum of anatomy `a` at points x, y.

    Each field is a rounded apex widening to a sharp costophrenic angle, cut
    from below by the diaphragm dome; heart and mediastinum cover its medial border.
    """
    fields, abdomen = [], []
    for i, side in enumerate((-1.0, 1.0)):
        top, base, medial, width = a["tops"][i], a["bases"][i], a["medial"][i], a["widths"][i]
        cx, cy = side * (medial + width / 2), (top + base) / 2
        lx, ly = _rotate(x - cx, y - cy, side * a["tilts"][i])
        u, v = side * (lx + cx), ly + cy  # u grows laterally
        t = _unit((v - top) / (base - top))
        apex_u = medial + a["apex_at"][i] * width
        wobble = 1.0 + sum(
            a["wobble"][i, k] * np.sin((k + 1) * np.pi * t + a["wobble_phase"][i, k]) for k in range(2)
        )
        lateral = apex_u + (medial + width - apex_u) * (t * (2.0 - t)) ** 0.8 * wobble
        tm = np.minimum(t / 0.35, 1.0)  # the medial border reaches the mediastinum a third of the way down
        medial_border = apex_u - (apex_u - medial) * np.sqrt(tm * (2.0 - tm))
        r = _unit((u - medial) / width) ** (np.log(0.5) / np.log(a["dome_peak"][i]))
        # Blunt at the cardiophrenic end (r = 0), a sharp recess at the costophrenic end (r = 1).
        dome = base - a["domes"][i] * np.sin(np.pi * (0.15 + 0.85 * r)) ** 0.6
        fields.append(_smooth_min(_smooth_min(u - medial_border, lateral - u), _smooth_min(dome - v, v - top)))
        abdomen.append(v - dome)
    heart, mediastinum = _heart_sdf(x, y, a), _mediastinum_sdf(x, y, a)
    lungs = _smooth_min(np.maximum(fields[0], fields[1]), -np.maximum(heart, mediastinum))
    return Regions(lungs, np.where(x < a["mid"], abdomen[0], abdomen[1]), heart, mediastinum)


def _heart_sdf(x: np.ndarray, y: np.ndarray, a: dict) -> np.ndarray:
    hx, hy, long_axis, short_axis, tilt = a["heart"]
    hu, hv = _rotate(x - hx, y - hy, tilt)
    radius = np.sqrt((hu / long_axis) ** 2 + (hv / short_axis) ** 2)
    return (1.0 - radius) * short_axis


def _mediastinum_sdf(x: np.ndarray, y: np.ndarray, a: dict) -> np.ndarray:
    """The central band plus the aortic knob bulging into the left lung."""
    band = a["mediastinum"] * (1.0 + 0.25 * _unit(-0.2 - y)) - np.abs(x - a["mid"])
    knob_x = a["mid"] + a["mediastinum"] - 0.02
    knob = 0.1 - np.sqrt((x - knob_x) ** 2 + (y + 0.3) ** 2)
    return np.maximum(band, knob)


def _soft_tissue(x: np.ndarray, y: np.ndarray, a: dict, edge: float) -> np.ndarray:
    """Body outline, thicker in the middle and tapering to the shoulders."""
    half_width = a["body"] - 0.15 * _unit((-0.75 - y) / 0.25) ** 2
    body = _ramp(half_width - np.abs(x), edge)
    thickness = np.sqrt(_unit(1.0 - (x / half_width) ** 2))
    return body * (0.55 + 0.45 * thickness)


def _heart_and_abdomen(x: np.ndarray, y: np.ndarray, a: dict, regions: Regions, edge: float) -> np.ndarray:
    """Heart, mediastinum and the abdomen under the diaphragm: one water density, so they merge."""
    water = _ramp(np.maximum(np.maximum(regions.heart, regions.mediastinum), regions.abdomen), 2 * edge)
    trachea = _ramp(0.035 - np.abs(x - a["mid"]), edge) * _ramp(-0.25 - y, 4 * edge)
    return 0.35 * water - 0.2 * trachea


def _bones(x: np.ndarray, y: np.ndarray, a: dict, rng: np.random.Generator, edge: float) -> np.ndarray:
    """Posterior ribs (arcs from the spine), faint anterior ribs, clavicles and the spine."""
    u = np.abs(x - a["mid"])
    spacing = rng.uniform(0.11, 0.14)
    offset = rng.uniform(0.0, spacing) + np.where(x > a["mid"], rng.uniform(-0.02, 0.02), 0.0)
    phase = (y + 0.5 * u - 1.1 * u**2 - offset) / (spacing * (1.0 + 0.12 * (y + 1.0)))
    band = 2.0 * np.abs(phase - np.floor(phase) - 0.5)  # 0 mid-rib, 1 mid-space
    rib_width = rng.uniform(0.3, 0.42)
    posterior = _ramp(rib_width - band, 0.15) * _ramp(a["bases"].max() + 0.05 - y, 0.15) * _ramp(y + 0.86, 0.05)
    anterior_phase = (y + 0.5 * u - rng.uniform(0.0, 1.0)) / 0.16
    anterior = _ramp(0.3 - 2.0 * np.abs(anterior_phase - np.floor(anterior_phase) - 0.5), 0.15)
    anterior *= _unit((u - 0.25) / 0.3) * _ramp(0.3 - y, 0.2)
    clavicle_y = rng.uniform(-0.58, -0.48) - 0.25 * u + 0.06 * np.sin(np.pi * u / 0.65)
    clavicle = _ramp(rng.uniform(0.03, 0.045) - np.abs(y - clavicle_y), edge) * _ramp(0.68 - u, 0.05)
    spine = _ramp(0.06 - u, edge) * (0.8 + 0.2 * np.cos(2 * np.pi * y / 0.13))
    chest = _ramp(a["body"] - 0.02 - u, 0.05)
    ribs = rng.uniform(0.1, 0.18) * posterior + rng.uniform(0.03, 0.07) * anterior
    return chest * ribs + rng.uniform(0.25, 0.4) * clavicle + 0.25 * spine


def _lung_markings(
    gx: np.ndarray, gy: np.ndarray, x: np.ndarray, y: np.ndarray, a: dict, rng: np.random.Generator
) -> np.ndarray:
    """Vessels: ridges of smooth noise, dense at the hila and fading to the periphery."""
    ridges = (1.0 - np.abs(np.tanh(_smooth_noise(rng, gx, gy, 11)))) ** 4
    hilum_y = (a["apex"] + a["bases"].mean()) / 2 - 0.05
    dist = np.minimum(np.hypot(x + 0.2, y - hilum_y), np.hypot(x - 0.22, y - hilum_y))
    return rng.uniform(0.12, 0.22) * ridges * np.exp(-dist / 0.4) + 0.12 * np.exp(-((dist / 0.1) ** 2))


def _extras(x: np.ndarray, y: np.ndarray, a: dict, rng: np.random.Generator, edge: float) -> np.ndarray:
    """Breast shadows over the lower lungs and a gastric air bubble under the left dome, each sometimes."""
    out = np.zeros_like(x)
    breast = rng.uniform(0.08, 0.25), rng.uniform(0.3, 0.42), rng.uniform(0.5, 0.75)
    if rng.random() < 0.4:
        r = np.sqrt(((np.abs(x) - 0.48) / breast[1]) ** 2 + ((y - breast[2]) / (0.8 * breast[1])) ** 2)
        out += breast[0] * _ramp(1.0 - r, 0.15)
    bubble = rng.uniform(0.25, 0.45), rng.uniform(0.07, 0.12), rng.uniform(0.04, 0.07)
    if rng.random() < 0.5:
        r = np.sqrt(((x - bubble[0]) / bubble[1]) ** 2 + ((y - a["bases"][1] - 0.02) / bubble[2]) ** 2)
        out -= 0.5 * a["air"] * _ramp(1.0 - r, 3 * edge / bubble[2])
    return out


# --- infection -----------------------------------------------------------------


def _opacities(
    gx: np.ndarray, gy: np.ndarray, x: np.ndarray, y: np.ndarray, a: dict, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(added density, extent): several irregular blobs; the mask is extent > 0.

    Centres favour the lower and peripheral lung; ground glass is faint and
    mottled, consolidation dense and nearly as opaque as soft tissue.
    """
    candidates = rng.uniform([-0.9, -0.7], [0.9, 0.7], (64, 2))
    inside = _regions(candidates[:, 0], candidates[:, 1], a).lung > 0.03
    weight = inside * (0.2 + np.maximum(candidates[:, 1] + 0.5, 0.0)) * (0.2 + np.abs(candidates[:, 0]))
    count = int(rng.integers(1, 6))
    picks = rng.random(count)
    params = rng.uniform([0.08, 0.55, 0.0, 0.0], [0.2, 1.0, np.pi, 1.0], (count, 4))
    strength = rng.uniform(0.0, 1.0, count)
    lobulation = _smooth_noise(rng, gx, gy, 12)
    mottle = _unit(0.5 + 0.35 * _smooth_noise(rng, gx, gy, 20))
    if not weight.any():
        return np.zeros_like(x), np.full_like(x, -1.0)
    cdf = np.cumsum(weight) / weight.sum()
    opacity = np.zeros_like(x)
    extent = np.full_like(x, -1.0)
    for pick, (radius, aspect, tilt, kind), s in zip(picks, params, strength):
        cx, cy = candidates[np.searchsorted(cdf, pick)]
        bu, bv = _rotate(x - cx, y - cy, tilt)
        reach = np.sqrt((bu / radius) ** 2 + (bv / (radius * aspect)) ** 2)
        # Lobulate the margin, never the core, so no blob dissolves into specks.
        field = 1.0 - reach + 0.5 * lobulation * np.minimum(reach, 1.0)
        extent = np.maximum(extent, field)
        if kind < 0.35:  # consolidation
            amount = a["air"] * (0.6 + 0.3 * s) * (0.9 + 0.1 * mottle)
            margin = 0.3
        else:  # ground glass: hazy, with ill-defined margins
            amount = a["air"] * (0.3 + 0.25 * s) * (0.55 + 0.45 * mottle)
            margin = 0.6
        opacity = np.maximum(opacity, amount * _unit(0.5 + field / margin))
    return opacity, extent


# --- image formation -------------------------------------------------------------


def _expose(density: np.ndarray, gx: np.ndarray, gy: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Density -> grey levels: uneven exposure, film curve, window, gamma, blur, noise."""
    heel = 1.0 + rng.uniform(-0.08, 0.08) * gx + rng.uniform(-0.08, 0.08) * gy
    k, low, high, gamma = rng.uniform([1.0, -0.05, 0.85, 0.75], [1.6, 0.08, 1.0, 1.3])
    film = 1.0 - np.exp(-k * np.maximum(density * heel, 0.0))
    image = _unit((film - low) / (high - low)) ** gamma
    blur, noise = rng.uniform([0.3, 0.005], [0.9, 0.03])
    image = ndimage.gaussian_filter(image, blur * size / 64, mode="nearest")
    image += rng.normal(0.0, noise, image.shape)
    return _unit(image).astype(np.float32)


# --- helpers ---------------------------------------------------------------------


def _rotate(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(angle), np.sin(angle)
    return c * x + s * y, -s * x + c * y


def _smooth_min(a: np.ndarray, b: np.ndarray, radius: float = 0.07) -> np.ndarray:
    """min(a, b) with corners rounded over `radius`, so wedge tips do not break into stray pixels."""
    h = np.maximum(radius - np.abs(a - b), 0.0) / radius
    return np.minimum(a, b) - 0.25 * radius * h * h


def _ramp(distance: np.ndarray, width: float) -> np.ndarray:
    """Soft inside-indicator: 0 outside, 1 inside, linear over `width` (an antialiased edge)."""
    return _unit(0.5 + distance / width)


def _unit(values: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] (two ufuncs: much cheaper than np.clip on small arrays)."""
    return np.minimum(np.maximum(values, 0.0), 1.0)


def _smooth_noise(rng: np.random.Generator, gx: np.ndarray, gy: np.ndarray, cells: int) -> np.ndarray:
    """Unit-variance smooth noise with features ~2/cells wide, the same at every image size.

    Gaussian-weighted sums of a cells x cells lattice of normal draws; each
    weight row has unit L2 norm, so every pixel has variance 1.
    """
    lattice = rng.standard_normal((cells, cells))
    knots = np.linspace(-1.1, 1.1, cells)
    spread = knots[1] - knots[0]
    wx = np.exp(-0.5 * ((gx[0][:, None] - knots) / spread) ** 2)
    wy = np.exp(-0.5 * ((gy[:, 0][:, None] - knots) / spread) ** 2)
    wx /= np.linalg.norm(wx, axis=1, keepdims=True)
    wy /= np.linalg.norm(wy, axis=1, keepdims=True)
    return wy @ lattice @ wx.T
