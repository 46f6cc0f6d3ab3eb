"""finetec.layouts: topology of the built-in layouts, PYSKL compatibility, mappings, custom layouts, errors."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from finetec.layouts import REGION_NAMES, Layout, LayoutError, convert_keypoints, get_layout, list_layouts

BUILTIN = ["coco17", "h36m17", "nturgbd25", "openpose18", "penn13"]

# PYSKL (pyskl/utils/graph.py, pyskl/datasets/pipelines/pose_related.py): inward edges, centre and JointToBone pairs
PYSKL = {
    "coco17": dict(
        inward=[(15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6), (5, 0),
                (6, 0), (1, 0), (3, 1), (2, 0), (4, 2)],
        center=0,
        pairs=((0, 0), (1, 0), (2, 0), (3, 1), (4, 2), (5, 0), (6, 0), (7, 5), (8, 6), (9, 7), (10, 8), (11, 0),
               (12, 0), (13, 11), (14, 12), (15, 13), (16, 14))),
    "openpose18": dict(
        inward=[(4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2), (5, 1), (2, 1),
                (0, 1), (15, 0), (14, 0), (17, 15), (16, 14)],
        center=1,
        pairs=((0, 0), (1, 0), (2, 1), (3, 2), (4, 3), (5, 1), (6, 5), (7, 6), (8, 2), (9, 8), (10, 9), (11, 5),
               (12, 11), (13, 12), (14, 0), (15, 0), (16, 14), (17, 15))),
    "nturgbd25": dict(
        inward=[(i - 1, j - 1) for i, j in [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7),
                                            (9, 21), (10, 9), (11, 10), (12, 11), (13, 1), (14, 13), (15, 14),
                                            (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 8), (23, 8),
                                            (24, 12), (25, 12)]],
        center=20,
        pairs=((0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8), (10, 9),
               (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18), (21, 22),
               (20, 20), (22, 7), (23, 24), (24, 11))),
}


def _pyskl_spatial(inward, V):
    """PYSKL's Graph(mode='spatial').A, written out: [I, norm(inward), norm(outward)], column-normalised."""
    def edge2mat(link):
        A = np.zeros((V, V))
        for i, j in link:
            A[j, i] = 1
        return A

    def norm(A):
        d = A.sum(0)
        return A @ np.diag(np.where(d > 0, 1 / np.where(d > 0, d, 1), 0))

    return np.stack([np.eye(V), norm(edge2mat(inward)), norm(edge2mat([(j, i) for i, j in inward]))])


def test_builtin_list():
    assert list_layouts() == BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
def test_adjacency_shapes_and_normalisation(name):
    L = get_layout(name)
    V = L.num_joints
    A = L.adjacency("spatial")
    assert A.shape == (3, V, V) and A.dtype == np.float32
    np.testing.assert_array_equal(A[0], np.eye(V))
    for k in (1, 2):  # every column with an edge sums to 1
        col = A[k].sum(0)
        assert np.allclose(col[col > 0], 1.0)
    # inward and outward partitions are transposed structures of one tree: V-1 edges each
    assert (A[1] > 0).sum() == V - 1 and np.array_equal(A[1] > 0, (A[2] > 0).T)
    U = L.adjacency("uniform")[0]
    assert U.shape == (V, V) and np.allclose(U.sum(0), 1.0)
    B = L.adjacency("binary")[0]
    assert np.array_equal(B, B.T) and (np.diag(B) == 1).all() and B.sum() == V + 2 * (V - 1)
    with pytest.raises(ValueError, match="unknown adjacency mode"):
        L.adjacency("nope")


@pytest.mark.parametrize("name", sorted(PYSKL))
def test_matches_pyskl_graph_and_bones(name):
    L, ref = get_layout(name), PYSKL[name]
    assert L.center == ref["center"]
    np.testing.assert_allclose(L.adjacency("spatial"), _pyskl_spatial(ref["inward"], L.num_joints), atol=1e-7)
    assert sorted(L.bone_pairs) == sorted(ref["pairs"])


@pytest.mark.parametrize("name", BUILTIN)
def test_bone_pairs_form_a_tree(name):
    L = get_layout(name)
    parents = L.parents
    pairs = L.bone_pairs
    assert [j for j, _ in pairs] == list(range(L.num_joints))
    roots = [j for j, p in pairs if j == p]
    assert len(roots) == 1
    for j in range(L.num_joints):  # every chain reaches the root without a cycle
        seen = set()
        while parents[j] != j:
            assert j not in seen
            seen.add(j)
            j = parents[j]
        assert j == roots[0]
    # without explicit bones the tree is the edge tree rooted at the centre
    if name in ("h36m17", "penn13"):
        assert roots == [L.center]
        assert {frozenset(p) for p in pairs if p[0] != p[1]} == {frozenset(e) for e in L.edges}


@pytest.mark.parametrize("name", BUILTIN)
def test_flip_index_is_involution_swapping_sides(name):
    L = get_layout(name)
    f = L.flip_index
    np.testing.assert_array_equal(f[f], np.arange(L.num_joints))
    for i, joint in enumerate(L.joints):
        partner = L.joints[f[i]]
        if joint.startswith("left_"):
            assert partner == "right_" + joint[5:]
        elif joint.startswith("right_"):
            assert partner == "left_" + joint[6:]
        else:
            assert partner == joint


@pytest.mark.parametrize("name", BUILTIN)
def test_regions_partition_the_joints(name):
    L = get_layout(name)
    assert tuple(L.regions) == REGION_NAMES
    joined = sorted(j for r in REGION_NAMES for j in L.regions[r])
    assert joined == list(range(L.num_joints))  # every joint in exactly one region
    assert (L.region_index >= 0).all()
    for r, name_r in enumerate(REGION_NAMES):
        assert set(np.flatnonzero(L.region_index == r)) == set(L.regions[name_r])
    for side in ("left", "right"):
        for part in ("arm", "leg"):
            assert all(L.joints[j].startswith(side + "_") for j in L.regions[f"{side}_{part}"])


def test_coco_to_h36m_derives_missing_joints():
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(2, 4, 17, 2)).astype(np.float32)
    score = rng.uniform(0.1, 1, size=(2, 4, 17)).astype(np.float32)
    coco, h36 = get_layout("coco17"), get_layout("h36m17")
    out, s = convert_keypoints(kp, score, "coco17", "h36m17")
    assert out.shape == (2, 4, 17, 2)
    c, h = coco.index, h36.index
    np.testing.assert_allclose(out[..., h("left_knee"), :], kp[..., c("left_knee"), :])
    np.testing.assert_allclose(out[..., h("nose"), :], kp[..., c("nose"), :])
    pelvis = (kp[..., c("left_hip"), :] + kp[..., c("right_hip"), :]) / 2
    thorax = (kp[..., c("left_shoulder"), :] + kp[..., c("right_shoulder"), :]) / 2
    np.testing.assert_allclose(out[..., h("pelvis"), :], pelvis, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[..., h("spine"), :], (pelvis + thorax) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[..., h("head"), :], (kp[..., c("left_ear"), :] + kp[..., c("right_ear"), :]) / 2,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s[..., h("pelvis")], np.minimum(score[..., c("left_hip")], score[..., c("right_hip")]))


def test_h36m_to_coco_leaves_face_missing():
    rng = np.random.default_rng(1)
    kp = rng.normal(size=(1, 3, 17, 3)).astype(np.float32)
    out, s = convert_keypoints(kp, None, "h36m17", "coco17")
    coco, h36 = get_layout("coco17"), get_layout("h36m17")
    for face in ("left_eye", "right_eye", "left_ear", "right_ear"):  # not invented: zero with score 0
        assert (out[..., coco.index(face), :] == 0).all() and (s[..., coco.index(face)] == 0).all()
    np.testing.assert_array_equal(out[..., coco.index("right_wrist"), :], kp[..., h36.index("right_wrist"), :])
    assert (s[..., coco.index("right_wrist")] == 1).all()


def test_penn_to_coco_uses_head_as_nose():
    rng = np.random.default_rng(2)
    kp = rng.normal(size=(1, 5, 13, 2)).astype(np.float32)
    score = rng.integers(0, 2, size=(1, 5, 13)).astype(np.float32)
    out, s = convert_keypoints(kp, score, "penn13", "coco17")
    penn, coco = get_layout("penn13"), get_layout("coco17")
    np.testing.assert_array_equal(out[..., coco.index("nose"), :], kp[..., penn.index("head"), :])
    for j in penn.joints[1:]:
        np.testing.assert_array_equal(out[..., coco.index(j), :], kp[..., penn.index(j), :])
        np.testing.assert_array_equal(s[..., coco.index(j)], score[..., penn.index(j)])
    assert (s[..., [coco.index(f) for f in ("left_eye", "right_eye", "left_ear", "right_ear")]] == 0).all()


def test_convert_checks_joint_count():
    with pytest.raises(ValueError, match="has 13 joints but layout 'coco17' has 17"):
        convert_keypoints(np.zeros((1, 2, 13, 2)), None, "coco17", "h36m17")


MINI = {
    "name": "mini",
    "joints": ["hip", "left_knee", "right_knee", "neck", "left_hand", "right_hand"],
    "center": "hip",
    "edges": [["left_knee", "hip"], ["right_knee", "hip"], ["neck", "hip"], ["left_hand", "neck"],
              ["right_hand", "neck"]],
    "flip_pairs": [["left_knee", "right_knee"], ["left_hand", "right_hand"]],
    "regions": {"head": ["hip", "neck"], "left_arm": ["left_hand"], "right_arm": ["right_hand"],
                "left_leg": ["left_knee"], "right_leg": ["right_knee"]},
}


def test_custom_layout_from_dict_and_yaml(tmp_path):
    L = get_layout(MINI)
    assert L.num_joints == 6 and L.center == 0
    assert L.bone_pairs == ((0, 0), (1, 0), (2, 0), (3, 0), (4, 3), (5, 3))
    np.testing.assert_array_equal(L.flip_index, [0, 2, 1, 3, 5, 4])
    assert L.adjacency().shape == (3, 6, 6)
    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump(MINI))
    Ly = get_layout(path)
    assert Ly.joints == L.joints and Ly.edges == L.edges and Ly.regions == L.regions
    assert get_layout(str(path)) is Ly  # cached
    assert get_layout(L) is L


def test_custom_bones_override_edge_tree():
    L = get_layout(dict(MINI, bones={"hip": "hip", "left_knee": "hip", "right_knee": "hip", "neck": "hip",
                                     "left_hand": "left_knee", "right_hand": "right_knee"}))
    assert L.bone_pairs == ((0, 0), (1, 0), (2, 0), (3, 0), (4, 1), (5, 2))
    with pytest.raises(LayoutError, match="bones give no parent for \\['right_hand'\\]"):
        get_layout(dict(MINI, bones={j: "hip" for j in MINI["joints"][:-1]}))
    with pytest.raises(LayoutError, match="cycle"):
        get_layout(dict(MINI, bones={"hip": "neck", "neck": "hip", "left_knee": "hip", "right_knee": "hip",
                                     "left_hand": "neck", "right_hand": "neck"}))


def test_nested_derived_joints_weight_parts_equally():
    # target derives mid = mean(base, top) with top = mean(a, b); source has base, a, b directly
    src = get_layout({"name": "src3", "joints": ["base", "a", "b"], "edges": [["a", "base"], ["b", "base"]]})
    tgt = get_layout({"name": "tgt2", "joints": ["mid", "base"], "edges": [["mid", "base"]],
                      "derived": {"top": ["a", "b"], "mid": ["base", "top"]}})
    kp = np.array([[[0.0, 0.0], [4.0, 0.0], [0.0, 8.0]]], dtype=np.float32)  # base, a, b
    out, s = convert_keypoints(kp, None, src, tgt)
    top = (kp[0, 1] + kp[0, 2]) / 2
    np.testing.assert_allclose(out[0, 0], (kp[0, 0] + top) / 2)  # (1, 2), not the 3-way mean (4/3, 8/3)
    np.testing.assert_array_equal(out[0, 1], kp[0, 0])
    assert (s == 1).all()


def test_single_part_derived_joint_is_copied():
    src = get_layout({"name": "s1", "joints": ["root", "x"], "edges": [["x", "root"]]})
    tgt = get_layout({"name": "t1", "joints": ["root", "y"], "edges": [["y", "root"]], "derived": {"y": ["x"]}})
    kp = np.array([[[1.0, 2.0], [3.0, 4.0]]], dtype=np.float32)
    out, s = convert_keypoints(kp, None, src, tgt)
    np.testing.assert_array_equal(out[0, 1], [3.0, 4.0])
    assert s[0, 1] == 1


@pytest.mark.parametrize("change, pattern", [
    ({"edges": [["left_knee", "pelvis"]]}, "edge names unknown joint 'pelvis'"),
    ({"center": "tail"}, "center names unknown joint 'tail'"),
    ({"flip_pairs": [["left_knee", "right_foot"]]}, "flip pair names unknown joint 'right_foot'"),
    ({"flip_pairs": [["left_knee", "right_knee"], ["left_knee", "right_hand"]]}, "more than one flip pair"),
    ({"flip_pairs": [["neck", "neck"]]}, "more than one flip pair or are paired with themselves"),
    ({"regions": {"head": ["hip"], "left_arm": ["left_hand"]}}, "regions lack"),
    ({"regions": dict(MINI["regions"], head=["hip", "chin"])}, "region head names unknown joint 'chin'"),
    ({"edges": [[0, 9]]}, "edge index 9 out of range"),
    ({"joints": MINI["joints"] + ["hip"]}, "duplicate joint names"),
])
def test_errors_for_unknown_joints_and_bad_descriptions(change, pattern):
    with pytest.raises(LayoutError, match=pattern):
        Layout.from_dict(dict(MINI, **change))


def test_missing_keys_and_unknown_names(tmp_path):
    with pytest.raises(LayoutError, match="lacks required key 'edges'"):
        Layout.from_dict({"name": "x", "joints": ["a"]})
    with pytest.raises(LayoutError, match="unknown layout 'coco18'"):
        get_layout("coco18")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(LayoutError, match="does not hold a mapping"):
        get_layout(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(LayoutError, match="cannot read layout file"):
        get_layout(broken)


def _pyskl_stgcn_spatial_loops(layout):
    """A plain transcription of PYSKL's Graph.stgcn_spatial (max_hop=1), loops and all, as the reference."""
    V = layout.num_joints
    A = np.zeros((V, V))
    for i, j in layout.edges:
        A[i, j] = A[j, i] = 1
    hop_dis = np.full((V, V), np.inf)
    for d, m in ((0, np.eye(V) > 0), (1, (A + np.eye(V)) > 0)):
        hop_dis[m & np.isinf(hop_dis)] = d
    adj = (hop_dis <= 1).astype(float)
    norm = adj @ np.diag(1.0 / adj.sum(0))
    c = layout.center
    out = []
    for hop in (0, 1):
        close, further = np.zeros((V, V)), np.zeros((V, V))
        for i in range(V):
            for j in range(V):
                if hop_dis[j, i] == hop:
                    if hop_dis[j, c] >= hop_dis[i, c]:
                        close[j, i] = norm[j, i]
                    else:
                        further[j, i] = norm[j, i]
        out.append(close)
        if hop > 0:
            out.append(further)
    return np.stack(out)


@pytest.mark.parametrize("name", ["coco17", "penn13", "nturgbd25", "openpose18", "h36m17"])
def test_stgcn_spatial_matches_pyskl_transcription(name):
    layout = get_layout(name)
    A = layout.adjacency("stgcn_spatial")
    np.testing.assert_allclose(A, _pyskl_stgcn_spatial_loops(layout), atol=1e-6)
    assert A.shape == (3, layout.num_joints, layout.num_joints)
    # every column of (root + closer + further) sums to 1: the partitions split one normalised A + I
    np.testing.assert_allclose(A.sum(0).sum(0), 1.0, atol=1e-6)
    if name == "coco17":  # the nose has 4 neighbours + itself
        assert A[0, 0, 0] == pytest.approx(0.2)


def test_stgcn_uses_stgcn_spatial_and_stgcnpp_spatial():
    from finetec.models import create_model

    st = create_model("stgcn", num_classes=3, layout="coco17", in_channels=3, width="slim")
    pp = create_model("stgcnpp", num_classes=3, layout="coco17", in_channels=3, width="slim")
    a_st = [b for n, b in st.named_buffers() if n.endswith("A")] + [p for n, p in st.named_parameters() if n.endswith(".A")]
    a_pp = [p for n, p in pp.named_parameters() if n.endswith(".A")] + [b for n, b in pp.named_buffers() if n.endswith("A")]
    assert a_st and a_pp
    np.testing.assert_allclose(a_st[0].detach().numpy(), get_layout("coco17").adjacency("stgcn_spatial"), atol=1e-6)
    np.testing.assert_allclose(a_pp[0].detach().numpy(), get_layout("coco17").adjacency("spatial"), atol=1e-6)
