"""Joint layouts as data.

A :class:`Layout` is read from a YAML file (the built-in ones live in ``layouts/data``) or from a dict with the
keys ``name``, ``joints`` (names, in storage order), ``center``, ``edges`` (child -> parent pairs of joint names,
PYSKL's "inward" edges), ``flip_pairs``, ``regions`` (the five body regions FineTec's decomposition uses:
``head``, ``left_arm``, ``right_arm``, ``left_leg``, ``right_leg``) and optionally ``bones`` (``joint: parent`` for
every joint, the root its own parent; PYSKL's ``JointToBone`` pairs for the layouts PYSKL defines, which are not the
tree of ``edges``), ``derived`` (joints this layout can build as the mean of other joints when converting into it)
and ``aliases`` (per target layout, joint names that stand for a differently named joint there).

Everything a model or transform needs from the skeleton topology comes from here: adjacency partitions, bone
pairs, the flip permutation, the region index lists and mappings between layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

__all__ = ["Layout", "get_layout", "list_layouts", "convert_keypoints", "REGION_NAMES"]

REGION_NAMES = ("head", "left_arm", "right_arm", "left_leg", "right_leg")
_DATA_DIR = Path(__file__).parent / "data"


class LayoutError(ValueError):
    """A layout description is inconsistent."""


@dataclass(frozen=True)
class Layout:
    name: str
    joints: tuple[str, ...]
    center: int
    edges: tuple[tuple[int, int], ...]  # (child, parent) index pairs
    flip_pairs: tuple[tuple[int, int], ...]
    regions: Mapping[str, tuple[int, ...]]
    derived: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    aliases: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    bone_parents: tuple[int, ...] | None = None  # explicit parent per joint (``bones``); None = BFS tree of edges

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Layout":
        for key in ("name", "joints", "edges"):
            if key not in d:
                raise LayoutError(f"layout description lacks required key {key!r}")
        joints = tuple(str(j) for j in d["joints"])
        if len(set(joints)) != len(joints):
            raise LayoutError(f"layout {d['name']!r}: duplicate joint names")
        index = {j: i for i, j in enumerate(joints)}

        def idx(j: Any, what: str) -> int:
            if isinstance(j, (int, np.integer)):
                if not 0 <= int(j) < len(joints):
                    raise LayoutError(f"layout {d['name']!r}: {what} index {j} out of range 0..{len(joints) - 1}")
                return int(j)
            if j not in index:
                raise LayoutError(f"layout {d['name']!r}: {what} names unknown joint {j!r}")
            return index[j]

        edges = tuple((idx(a, "edge"), idx(b, "edge")) for a, b in d["edges"])
        flips = tuple((idx(a, "flip pair"), idx(b, "flip pair")) for a, b in d.get("flip_pairs", []))
        flipped = [j for pair in flips for j in pair]
        if len(set(flipped)) != len(flipped):
            twice = sorted({joints[j] for j in flipped if flipped.count(j) > 1})
            raise LayoutError(f"layout {d['name']!r}: joints {twice} appear in more than one flip pair or are "
                              "paired with themselves")
        regions_in = d.get("regions") or {}
        missing = [r for r in REGION_NAMES if r not in regions_in]
        if regions_in and missing:
            raise LayoutError(f"layout {d['name']!r}: regions lack {missing}; need all of {list(REGION_NAMES)}")
        regions = {r: tuple(idx(j, f"region {r}") for j in regions_in[r]) for r in REGION_NAMES if r in regions_in}
        center = idx(d.get("center", 0), "center")
        derived = {str(k): tuple(str(x) for x in v) for k, v in (d.get("derived") or {}).items()}
        aliases = {str(k): {str(a): str(b) for a, b in v.items()} for k, v in (d.get("aliases") or {}).items()}
        bone_parents = None
        if d.get("bones") is not None:
            bones = d["bones"]
            pairs = bones.items() if isinstance(bones, Mapping) else bones
            par = {}
            for a, b in pairs:
                par[idx(a, "bone")] = idx(b, "bone")
            lacking = [joints[i] for i in range(len(joints)) if i not in par]
            if lacking:
                raise LayoutError(f"layout {d['name']!r}: bones give no parent for {lacking}")
            for start in range(len(joints)):  # every chain must end at a root (a joint that is its own parent)
                seen, j = set(), start
                while par[j] != j:
                    if j in seen:
                        raise LayoutError(f"layout {d['name']!r}: bones form a cycle through {joints[j]!r}")
                    seen.add(j)
                    j = par[j]
            bone_parents = tuple(par[i] for i in range(len(joints)))
        return cls(str(d["name"]), joints, center, edges, flips, regions, derived, aliases, bone_parents)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Layout":
        path = Path(path)
        try:
            d = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise LayoutError(f"cannot read layout file {path}: {e}") from e
        if not isinstance(d, dict):
            raise LayoutError(f"layout file {path} does not hold a mapping")
        return cls.from_dict(d)

    # ------------------------------------------------------------------ topology
    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        return self.joints.index(joint)

    @cached_property
    def parents(self) -> np.ndarray:
        """Parent of each joint (a root is its own parent): the layout's ``bones`` if given, else the BFS tree of
        the edges rooted at ``center``."""
        if self.bone_parents is not None:
            return np.asarray(self.bone_parents, dtype=np.int64)
        nbrs: dict[int, list[int]] = {i: [] for i in range(self.num_joints)}
        for a, b in self.edges:
            nbrs[a].append(b)
            nbrs[b].append(a)
        parent = np.full(self.num_joints, -1, dtype=np.int64)
        parent[self.center] = self.center
        queue = [self.center]
        while queue:
            cur = queue.pop(0)
            for n in nbrs[cur]:
                if parent[n] < 0:
                    parent[n] = cur
                    queue.append(n)
        # joints not connected to the centre are their own parents (bone = 0)
        unreached = parent < 0
        parent[unreached] = np.arange(self.num_joints)[unreached]
        return parent

    @property
    def bone_pairs(self) -> tuple[tuple[int, int], ...]:
        """(joint, parent) for every joint, PYSKL's ``pairs`` convention (bone_v = x_v - x_parent(v))."""
        return tuple((i, int(p)) for i, p in enumerate(self.parents))

    @cached_property
    def flip_index(self) -> np.ndarray:
        perm = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def adjacency(self, mode: str = "spatial") -> np.ndarray:
        """Adjacency partitions ``[K, V, V]`` float32, as PYSKL's ``Graph``.

        ``spatial``: [I, normalised inward, normalised outward] (K=3); ``uniform``: normalised (A + I) (K=1);
        ``binary``: A + I without normalisation (K=1); ``stgcn_spatial``: ST-GCN's root / closer / further
        partitions (K=3), PYSKL's ``stgcn_spatial``.
        """
        V = self.num_joints
        a_in = np.zeros((V, V), dtype=np.float32)
        for child, parent in self.edges:
            a_in[parent, child] = 1.0  # edge2mat: A[j, i] = 1 for (i, j)
        a_out = a_in.T.copy()
        eye = np.eye(V, dtype=np.float32)

        def normalize(a: np.ndarray) -> np.ndarray:  # column normalisation, PYSKL's normalize_digraph
            deg = a.sum(0)
            inv = np.where(deg > 0, 1.0 / np.maximum(deg, 1e-12), 0.0)
            return (a * inv[None, :]).astype(np.float32)

        if mode == "spatial":
            return np.stack([eye, normalize(a_in), normalize(a_out)])
        if mode == "stgcn_spatial":
            # Yan et al.'s ST-GCN partitions as PYSKL's Graph(mode='stgcn_spatial', max_hop=1): (A + I) normalised
            # by column, split into root (hop 0), closer-to-centre and further-from-centre neighbours (hop 1).
            # Hop distances beyond max_hop are inf, as in PYSKL, so for joints more than one hop from the centre
            # "distance to centre" compares inf >= inf and the neighbour counts as closer (PYSKL's behaviour).
            binary = (a_in + a_out) > 0
            hop = np.full((V, V), np.inf)
            hop[binary] = 1.0
            np.fill_diagonal(hop, 0.0)
            norm = normalize(np.isfinite(hop).astype(np.float32))
            to_center = hop[:, self.center]
            closer = to_center[:, None] >= to_center[None, :]  # [j, i]: hop(j, centre) >= hop(i, centre)
            return np.stack([norm * (hop == 0), norm * ((hop == 1) & closer),
                             norm * ((hop == 1) & ~closer)]).astype(np.float32)
        if mode == "uniform":
            return normalize(a_in + a_out + eye)[None]
        if mode == "binary":
            return (a_in + a_out + eye)[None]
        raise ValueError(f"unknown adjacency mode {mode!r}; use spatial, stgcn_spatial, uniform or binary")

    @cached_property
    def region_index(self) -> np.ndarray:
        """Region id (0..4, order of :data:`REGION_NAMES`) of each joint; -1 for joints in no region."""
        out = np.full(self.num_joints, -1, dtype=np.int64)
        for r, name in enumerate(REGION_NAMES):
            for j in self.regions.get(name, ()):
                out[j] = r
        return out

    # ------------------------------------------------------------------ mappings
    def mapping_to(self, target: "Layout") -> tuple[np.ndarray, dict[int, tuple[int, ...]]]:
        """How to build ``target`` joints from this layout's joints.

        Returns ``(src_index, derived)``: ``src_index[j]`` is the source joint for target joint ``j`` or -1, and
        ``derived[j]`` lists source joints whose plain mean gives target joint ``j`` (from the target's
        ``derived``; an index may repeat, weighting nested derivations correctly).
        """
        alias = self.aliases.get(target.name, {})
        src_names = {alias.get(n, n): i for i, n in enumerate(self.joints)}
        src_index = np.array([src_names.get(n, -1) for n in target.joints], dtype=np.int64)
        derived: dict[int, tuple[int, ...]] = {}
        # resolve derived joints iteratively (a derived joint may depend on another derived one). Each part gets
        # equal weight: part index tuples are repeated to a common length, so the plain mean over the returned
        # (possibly repeated) indices is the mean of the parts' means.
        known = {n: (i,) for n, i in src_names.items()}
        changed = True
        while changed:
            changed = False
            for name, parts in target.derived.items():
                if name in known or not parts or not all(p in known for p in parts):
                    continue
                lcm = int(np.lcm.reduce([len(known[p]) for p in parts]))
                known[name] = tuple(sorted(i for p in parts for i in known[p] * (lcm // len(known[p]))))
                changed = True
        for j, n in enumerate(target.joints):
            if src_index[j] < 0 and n in known:
                derived[j] = known[n]
        return src_index, derived


_CACHE: dict[str, Layout] = {}


def list_layouts() -> list[str]:
    return sorted(p.stem for p in _DATA_DIR.glob("*.yaml"))


def get_layout(spec: "str | Path | Mapping[str, Any] | Layout") -> Layout:
    """A layout by built-in name, YAML path, dict, or an existing :class:`Layout`."""
    if isinstance(spec, Layout):
        return spec
    if isinstance(spec, Mapping):
        return Layout.from_dict(spec)
    spec_s = str(spec)
    if spec_s in _CACHE:
        return _CACHE[spec_s]
    builtin = _DATA_DIR / f"{spec_s}.yaml"
    if builtin.is_file():
        layout = Layout.from_yaml(builtin)
    elif Path(spec_s).is_file():
        layout = Layout.from_yaml(spec_s)
    else:
        raise LayoutError(f"unknown layout {spec_s!r}: not one of {list_layouts()} and not a YAML file")
    _CACHE[spec_s] = layout
    return layout


def convert_keypoints(
    keypoint: np.ndarray,
    score: np.ndarray | None,
    source: "str | Layout",
    target: "str | Layout",
) -> tuple[np.ndarray, np.ndarray]:
    """Convert ``keypoint [..., V_src, C]`` (and ``score [..., V_src]``) to the target layout.

    Joints with a correspondent are copied; joints the target derives (e.g. h36m17's pelvis = mean of hips) are
    averaged from their parts, and get the minimum score of the parts; joints with neither are zero with score 0
    (missing), never invented.
    """
    src, tgt = get_layout(source), get_layout(target)
    if keypoint.shape[-2] != src.num_joints:
        raise ValueError(
            f"keypoint has {keypoint.shape[-2]} joints but layout {src.name!r} has {src.num_joints}"
        )
    if score is None:
        score = np.ones(keypoint.shape[:-1], dtype=np.float32)
    src_index, derived = src.mapping_to(tgt)
    out = np.zeros(keypoint.shape[:-2] + (tgt.num_joints, keypoint.shape[-1]), dtype=np.float32)
    out_s = np.zeros(keypoint.shape[:-2] + (tgt.num_joints,), dtype=np.float32)
    have = src_index >= 0
    out[..., have, :] = keypoint[..., src_index[have], :]
    out_s[..., have] = score[..., src_index[have]]
    for j, parts in derived.items():
        p = list(parts)
        out[..., j, :] = keypoint[..., p, :].mean(-2)
        out_s[..., j] = score[..., p].min(-1)
    return out, out_s
