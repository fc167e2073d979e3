#!/usr/bin/env python3
"""Offline training for Traceo's scoring models.

Reads the features CSV written by `traceo features` and writes to scoring/models/:
  iforest.onnx      isolation forest, Y = mean path length E[h(x)]       (ai.onnx.ml TreeEnsembleRegressor)
  autoencoder.onnx  reconstruction MSE of the standardized features     (Sub/Div/MatMul/Add/Relu/Mul/ReduceMean)
  gbt.onnx          gradient-boosted trees, Y = raw margin (logit)       (ai.onnx.ml TreeEnsembleRegressor)
  manifest.json     version, feature names, combiner weights, iforest c, thresholds, validation metrics
  golden.json       inputs and onnxruntime outputs, for the Rust runtime test
  MODEL_CARD.md     data, seeds, features, models, metrics, limitations

Everything is deterministic given the same CSV (seed 7, split by a hash of user_id).
Run it through scoring/train/run, which sets up the venv and produces the CSV.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

SEED = 7
DEFAULT_MODEL_VERSION = "2026.11.23-1"
VALIDATION_PERCENT = 25  # users with sha256(user_id) % 100 < 25 are held out
META_COLUMNS = ["event_id", "user_id", "label", "scenario", "rules_score"]

# Hyperparameters (also written to the manifest and the model card).
IFOREST = dict(n_estimators=100, max_samples=256, max_features=1.0, bootstrap=False)
AUTOENCODER = dict(hidden_layer_sizes=(12, 6, 12), activation="relu", solver="adam", alpha=1e-4,
                   batch_size=256, learning_rate_init=1e-3, max_iter=30, tol=1e-5,
                   n_iter_no_change=5, shuffle=True)
GBT = dict(max_iter=150, max_depth=5, max_leaf_nodes=31, learning_rate=0.1, l2_regularization=1.0,
           min_samples_leaf=20, early_stopping=False)
# Row caps, to keep training within a few minutes on 2 cores (rows are sampled with seed 7).
AUTOENCODER_MAX_ROWS = 200_000
GBT_MAX_ROWS = 400_000  # every malicious training row, plus benign rows up to the cap (reweighted)

ONNX_OPSET = 17       # default domain; ReduceMean still takes `axes` as an attribute (< 18)
ONNX_ML_OPSET = 3     # ai.onnx.ml; TreeEnsembleRegressor v3 (float attributes)
ONNX_IR_VERSION = 8   # IR version that goes with opset 17
PRODUCER = "traceo-train"
TREE_OP_DESC = "one ai.onnx.ml TreeEnsembleRegressor node (aggregate SUM, post_transform NONE, base_values)"

REPO = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO / "scoring" / "models"


def log(msg: str) -> None:
    print(f"[train] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

class Data:
    def __init__(self, path: Path):
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            if header[: len(META_COLUMNS)] != META_COLUMNS:
                sys.exit(f"{path}: header must start with {','.join(META_COLUMNS)}, got {header[:5]}")
            self.feature_names = header[len(META_COLUMNS):]
            if not self.feature_names:
                sys.exit(f"{path}: no feature columns")
            width = len(header)
            ids, users, labels, scens, nums = [], [], [], [], []
            line = 1
            while True:  # in chunks, so a few million rows stay within memory
                rows = [r for _, r in zip(range(200_000), reader)]
                if not rows:
                    break
                for r in rows:
                    line += 1
                    if len(r) != width:
                        sys.exit(f"{path}: line {line} has {len(r)} fields, header has {width}")
                ids += [r[0] for r in rows]
                users += [r[1] for r in rows]
                labels += [int(r[2]) for r in rows]
                scens += [r[3] for r in rows]
                # numpy's C parser on the joined numeric fields (2x faster than np.array of str)
                flat = np.fromstring(",".join([",".join(r[4:]) for r in rows]), dtype=np.float64, sep=",")
                if flat.size != len(rows) * (width - 4):
                    sys.exit(f"{path}: a numeric field near line {line} does not parse")
                nums.append(flat.reshape(len(rows), width - 4))
        if not labels:
            sys.exit(f"{path}: no rows")
        self.event_id = np.array(ids)
        self.user_id = np.array(users)
        self.label = np.array(labels, dtype=np.int64)
        self.scenario = np.array(scens)
        num = np.concatenate(nums)
        self.rules_score = num[:, 0]
        # The model input is float32: round the CSV's decimal text once, here, like the Rust side.
        self.X = num[:, 1:].astype(np.float32)
        if not set(np.unique(self.label)) <= {0, 1}:
            sys.exit(f"{path}: label must be 0 or 1")
        bad = ~np.isfinite(self.X).all(axis=1) | ~np.isfinite(self.rules_score)
        if bad.any():
            sys.exit(f"{path}: {bad.sum()} rows with NaN/inf values (first event {self.event_id[bad][0]})")

    def __len__(self) -> int:
        return len(self.label)


def user_bucket(user_id: str) -> int:
    """Deterministic, platform-independent bucket 0..99 of a user id."""
    return int.from_bytes(hashlib.sha256(user_id.encode("utf-8")).digest()[:8], "little") % 100


def user_fold(user_id: str) -> int:
    """A second, independent hash: the combiner's 2-fold cross-fit over validation users."""
    return hashlib.sha256(("fold:" + user_id).encode("utf-8")).digest()[0] & 1


def sample_rows(idx: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    if len(idx) <= cap:
        return idx
    return np.sort(rng.choice(idx, size=cap, replace=False))


# ----------------------------------------------------------------------------------------------
# ONNX export helpers
# ----------------------------------------------------------------------------------------------

def floor_f32(t: np.ndarray) -> np.ndarray:
    """Largest float32 <= t (float64). For a float32 x: x <= t  <=>  x <= floor_f32(t).

    scikit-learn trees send x left when x <= threshold, with the threshold in float64 and x a
    float32 (IsolationForest and GradientBoosting cast X to float32; HistGradientBoosting compares
    the float64 of a float32 input). Rounding the threshold to nearest float32 could round it up
    past an x that sklearn sends right; rounding down (toward -inf) keeps the comparison exact
    under ONNX's BRANCH_LEQ on float32.
    """
    t = np.asarray(t, dtype=np.float64)
    t32 = t.astype(np.float32)
    up = t32.astype(np.float64) > t
    t32[up] = np.nextafter(t32[up], np.float32(-np.inf))
    return t32


def tree_ensemble(trees, n_features: int, base_value: float, mode: str = "BRANCH_LEQ",
                  threshold_rounding: str = "floor"):
    """([node], []): one ai.onnx.ml TreeEnsembleRegressor, aggregate SUM, one target, Y [N,1] =
    base_value + sum of the trees' leaf values. (tract-onnx 0.23 does not implement this op; the
    Rust side evaluates it with its own scoring::model::TreeEnsemble.)

    trees: list of dicts with arrays (node ids are array indices, root 0)
      feature, threshold (float64), left, right, is_leaf (bool), value (leaf weight),
      optional missing_left (bool).
    True branch = left child (x MODE threshold).
    """
    from onnx import helper

    a = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes",
                         "nodes_values", "nodes_truenodeids", "nodes_falsenodeids",
                         "nodes_missing_value_tracks_true", "target_treeids", "target_nodeids",
                         "target_ids", "target_weights"]}
    for tid, t in enumerate(trees):
        n = len(t["feature"])
        leaf = np.asarray(t["is_leaf"], dtype=bool)
        if threshold_rounding == "floor":
            thr = floor_f32(t["threshold"])
        else:
            thr = np.asarray(t["threshold"], dtype=np.float64).astype(np.float32)
        thr = np.where(leaf, np.float32(0), thr)
        miss = np.asarray(t.get("missing_left", np.zeros(n, dtype=bool)), dtype=bool)
        feat = np.where(leaf, 0, np.asarray(t["feature"]))
        if (feat[~leaf] < 0).any() or (feat[~leaf] >= n_features).any():
            raise ValueError("feature index out of range")
        a["nodes_treeids"] += [tid] * n
        a["nodes_nodeids"] += list(range(n))
        a["nodes_featureids"] += [int(f) for f in feat]
        a["nodes_modes"] += ["LEAF" if lf else mode for lf in leaf]
        a["nodes_values"] += [float(v) for v in thr]
        a["nodes_truenodeids"] += [0 if lf else int(c) for lf, c in zip(leaf, t["left"])]
        a["nodes_falsenodeids"] += [0 if lf else int(c) for lf, c in zip(leaf, t["right"])]
        a["nodes_missing_value_tracks_true"] += [0 if lf else int(m) for lf, m in zip(leaf, miss)]
        leaves = np.flatnonzero(leaf)
        a["target_treeids"] += [tid] * len(leaves)
        a["target_nodeids"] += [int(i) for i in leaves]
        a["target_ids"] += [0] * len(leaves)
        a["target_weights"] += [float(np.float32(t["value"][i])) for i in leaves]
    if not any(a["nodes_missing_value_tracks_true"]):
        del a["nodes_missing_value_tracks_true"]
    return [helper.make_node(
        "TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", name="trees",
        n_targets=1, aggregate_function="SUM", post_transform="NONE",
        base_values=[float(np.float32(base_value))], **a)], []


def make_model(nodes, initializers, n_features: int, doc: str, metadata: dict, ml: bool):
    import onnx
    from onnx import TensorProto, helper

    X = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", n_features])
    Y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 1])
    graph = helper.make_graph(nodes, "traceo", [X], [Y], initializer=initializers, doc_string=doc)
    opsets = [helper.make_opsetid("", ONNX_OPSET)]
    if ml:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ONNX_ML_OPSET))
    model = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER,
                              producer_version=metadata["model_version"], doc_string=doc)
    model.ir_version = ONNX_IR_VERSION
    helper.set_model_props(model, {k: str(v) for k, v in metadata.items()})
    onnx.checker.check_model(model, full_check=True)
    return model


def ort_session(model_bytes: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1  # fixed summation order: reproducible golden outputs
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def ort_run(sess, X: np.ndarray, batch: int = 65536) -> np.ndarray:
    out = []
    for i in range(0, len(X), batch):
        out.append(sess.run(["Y"], {"X": np.ascontiguousarray(X[i:i + batch], dtype=np.float32)})[0])
    y = np.concatenate(out) if out else np.zeros((0, 1), np.float32)
    assert y.shape == (len(X), 1), y.shape
    return y[:, 0]


# ----------------------------------------------------------------------------------------------
# Model 1: isolation forest
# ----------------------------------------------------------------------------------------------

def c_path(n) -> np.ndarray:
    """Average path length of an unsuccessful BST search among n points (sklearn's c(n))."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    m = n > 2
    out[m] = 2.0 * (np.log(n[m] - 1.0) + np.euler_gamma) - 2.0 * (n[m] - 1.0) / n[m]
    return out


def iforest_trees(forest, n_features: int):
    if forest._max_features != n_features:
        raise ValueError("export assumes max_features=1.0 (every tree sees every feature in order)")
    n_trees = len(forest.estimators_)
    trees = []
    for est in forest.estimators_:
        t = est.tree_
        left, right = t.children_left, t.children_right
        is_leaf = left == -1
        depth = np.zeros(t.node_count, dtype=np.int64)
        for i in range(t.node_count):  # sklearn numbers children after their parent
            if not is_leaf[i]:
                depth[left[i]] = depth[i] + 1
                depth[right[i]] = depth[i] + 1
        value = (depth + c_path(t.n_node_samples)) / n_trees
        trees.append(dict(feature=t.feature, threshold=t.threshold, left=left, right=right,
                          is_leaf=is_leaf, value=value))
    return trees


# ----------------------------------------------------------------------------------------------
# Model 2: autoencoder
# ----------------------------------------------------------------------------------------------

def autoencoder_graph(mean: np.ndarray, std: np.ndarray, mlp):
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(mean.astype(np.float32).reshape(1, -1), "mean"),
             numpy_helper.from_array(std.astype(np.float32).reshape(1, -1), "std")]
    nodes = [helper.make_node("Sub", ["X", "mean"], ["centered"], name="center"),
             helper.make_node("Div", ["centered", "std"], ["z"], name="scale")]
    h = "z"
    n_layers = len(mlp.coefs_)
    for i, (W, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_)):
        inits.append(numpy_helper.from_array(W.astype(np.float32), f"W{i}"))
        inits.append(numpy_helper.from_array(b.astype(np.float32), f"b{i}"))
        nodes.append(helper.make_node("MatMul", [h, f"W{i}"], [f"mm{i}"], name=f"matmul{i}"))
        last = i == n_layers - 1
        out = "recon" if last else f"pre{i}"
        nodes.append(helper.make_node("Add", [f"mm{i}", f"b{i}"], [out], name=f"bias{i}"))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"], name=f"relu{i}"))
            h = f"h{i}"
    nodes += [helper.make_node("Sub", ["recon", "z"], ["err"], name="error"),
              helper.make_node("Mul", ["err", "err"], ["sq"], name="square"),
              helper.make_node("ReduceMean", ["sq"], ["Y"], name="mse", axes=[1], keepdims=1)]
    return nodes, inits


# ----------------------------------------------------------------------------------------------
# Model 3: gradient-boosted trees
# ----------------------------------------------------------------------------------------------

def gbt_trees(clf):
    trees = []
    for it in clf._predictors:
        assert len(it) == 1, "binary classification: one tree per iteration"
        nd = it[0].nodes
        if nd["is_categorical"].any():
            raise ValueError("categorical splits are not exported")
        trees.append(dict(feature=nd["feature_idx"], threshold=nd["num_threshold"],
                          left=nd["left"], right=nd["right"], is_leaf=nd["is_leaf"].astype(bool),
                          value=nd["value"], missing_left=nd["missing_go_to_left"].astype(bool)))
    base = float(np.asarray(clf._baseline_prediction).ravel()[0])
    return trees, base


# ----------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------

def metrics(y: np.ndarray, s: np.ndarray) -> dict:
    """ROC AUC, average precision and TPR at 1% / 0.1% FPR, with one sort.

    Same definitions as scikit-learn's roc_auc_score, average_precision_score and roc_curve (tied
    scores form one threshold), in a tenth of the time; main() checks one against scikit-learn.
    """
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    P = int(y.sum())
    N = len(y) - P
    if P == 0 or N == 0:
        return dict(n_pos=P, n_neg=N)
    order = np.argsort(-s, kind="mergesort")
    ss, yy = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]  # last row of each distinct score
    tps = np.cumsum(yy)[last].astype(np.float64)
    fps = (last + 1) - tps
    tpr = np.r_[0.0, tps / P]
    fpr = np.r_[0.0, fps / N]
    roc_auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    ap = float(np.sum(np.diff(tpr) * (tps / (tps + fps))))

    def tpr_at(target):
        return float(tpr[fpr <= target + 1e-12].max())

    return dict(roc_auc=round(roc_auc, 6), pr_auc=round(ap, 6),
                tpr_at_fpr_1pct=round(tpr_at(0.01), 6), tpr_at_fpr_0_1pct=round(tpr_at(0.001), 6),
                n_pos=P, n_neg=N)


def metrics_sklearn(y: np.ndarray, s: np.ndarray) -> dict:
    """The same metrics from scikit-learn (reference for `metrics`)."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, s)
    return dict(roc_auc=round(float(roc_auc_score(y, s)), 6),
                pr_auc=round(float(average_precision_score(y, s)), 6),
                tpr_at_fpr_1pct=round(float(tpr[fpr <= 0.01 + 1e-12].max()), 6),
                tpr_at_fpr_0_1pct=round(float(tpr[fpr <= 0.001 + 1e-12].max()), 6),
                n_pos=int(np.sum(y)), n_neg=int(len(y) - np.sum(y)))


# ----------------------------------------------------------------------------------------------
# Model card
# ----------------------------------------------------------------------------------------------

HELD_OUT_HEADING = "## Held-out evaluation (traceo eval)"
HELD_OUT_TODO = ("TODO (lead): results of `traceo eval` on a freshly generated, held-out data set "
                 "(different generator seed), scored by the Rust serving path.\n")


def preserved_held_out_section(card: Path) -> str:
    """Keep whatever the lead wrote under the held-out heading across retraining."""
    if not card.exists():
        return HELD_OUT_TODO
    text = card.read_text()
    start = text.find(HELD_OUT_HEADING)
    if start < 0:
        return HELD_OUT_TODO
    body = text[start + len(HELD_OUT_HEADING):]
    end = body.find("\n## ")
    body = body if end < 0 else body[:end + 1]
    return body.strip("\n") + "\n" if body.strip() else HELD_OUT_TODO


def metrics_table(rows: list[tuple[str, dict]]) -> str:
    out = ["| score | ROC AUC | PR AUC (AP) | TPR @ 1% FPR | TPR @ 0.1% FPR |",
           "|---|---:|---:|---:|---:|"]
    for name, m in rows:
        if "roc_auc" not in m:
            continue
        out.append(f"| {name} | {m['roc_auc']:.4f} | {m['pr_auc']:.4f} | "
                   f"{m['tpr_at_fpr_1pct']:.4f} | {m['tpr_at_fpr_0_1pct']:.4f} |")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", required=True, type=Path, help="features CSV from `traceo features`")
    ap.add_argument("--out", type=Path, default=MODELS_DIR, help="output directory (scoring/models)")
    ap.add_argument("--model-version", default=DEFAULT_MODEL_VERSION)
    ap.add_argument("--data-info", type=Path, help="JSON describing how the data was generated (from run)")
    args = ap.parse_args()

    import onnx
    import sklearn
    import onnxruntime
    from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPRegressor

    t_start = time.time()
    timings = {}
    rng = np.random.default_rng(SEED)
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)

    # ---- data ------------------------------------------------------------------------------
    t0 = time.time()
    d = Data(args.features)
    F = len(d.feature_names)
    data_info = json.loads(args.data_info.read_text()) if args.data_info else {}
    users = np.unique(d.user_id)
    val_users = {u for u in users if user_bucket(u) < VALIDATION_PERCENT}
    is_val = np.isin(d.user_id, np.array(sorted(val_users)))
    tr_idx, va_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    tr_benign = tr_idx[d.label[tr_idx] == 0]
    timings["load"] = time.time() - t0
    log(f"{len(d)} rows, {len(users)} users, {F} features; train {len(tr_idx)} rows "
        f"({len(users) - len(val_users)} users), validation {len(va_idx)} rows ({len(val_users)} users)")
    scen_all = {s: int((d.scenario == s).sum()) for s in sorted(set(d.scenario))}
    scen_label = {s: int(d.label[d.scenario == s].max()) for s in scen_all}
    if d.label[va_idx].sum() == 0 or d.label[tr_idx].sum() == 0:
        sys.exit("need malicious rows in both the training and the validation users")

    feature_csv = ",".join(d.feature_names)
    base_meta = dict(model_version=args.model_version, feature_names=feature_csv)

    # ---- model 1: isolation forest --------------------------------------------------------------
    t0 = time.time()
    iforest = IsolationForest(random_state=SEED, n_jobs=1, **IFOREST).fit(d.X[tr_benign])
    c_max = float(c_path([iforest.max_samples_])[0])
    trees = iforest_trees(iforest, F)
    if_meta = dict(base_meta, iforest_c=repr(c_max), output="mean path length E[h(x)]",
                   anomaly_score="2^(-Y/iforest_c)", n_trees=len(trees), max_samples=iforest.max_samples_,
                   threshold_mode="BRANCH_LEQ, thresholds rounded toward -inf to float32")
    doc = "Isolation forest; Y = mean path length; anomaly score = 2^(-Y/iforest_c)"
    if_model = make_model(*tree_ensemble(trees, F, 0.0), F, doc, if_meta, ml=True)
    timings["iforest"] = time.time() - t0
    log(f"isolation forest: {len(trees)} trees, max_samples {iforest.max_samples_}, c = {c_max:.6f} "
        f"({timings['iforest']:.1f}s)")

    # ---- model 2: autoencoder --------------------------------------------------------------
    t0 = time.time()
    Xb = d.X[tr_benign].astype(np.float64)
    mean = Xb.mean(axis=0)
    std = Xb.std(axis=0)
    std = np.where(std < 1e-6, 1.0, std)
    # The graph standardizes in float32; train on exactly the float32 constants it will use.
    mean32, std32 = mean.astype(np.float32), std.astype(np.float32)
    ae_idx = sample_rows(tr_benign, AUTOENCODER_MAX_ROWS, rng)
    Z = (d.X[ae_idx].astype(np.float64) - mean32) / std32
    with warnings.catch_warnings():  # reaching max_iter is expected; the epochs run are recorded
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPRegressor(random_state=SEED, **AUTOENCODER).fit(Z, Z)
    nodes, inits = autoencoder_graph(mean32, std32, mlp)
    ae_meta = dict(base_meta, output="mean squared reconstruction error of the standardized features",
                   hidden_layers=",".join(map(str, AUTOENCODER["hidden_layer_sizes"])))
    ae_model = make_model(nodes, inits, F, "Autoencoder; Y = reconstruction MSE per row", ae_meta, ml=False)
    timings["autoencoder"] = time.time() - t0
    log(f"autoencoder: {len(ae_idx)} rows, {mlp.n_iter_} epochs, final loss {mlp.loss_:.5f} "
        f"({timings['autoencoder']:.1f}s)")

    # ---- model 3: gradient-boosted trees ------------------------------------------------------
    t0 = time.time()
    # All malicious training rows; benign rows sampled to fill the cap and weighted by
    # (benign rows / benign rows sampled), so the margin stays calibrated to the full data.
    tr_mal = tr_idx[d.label[tr_idx] == 1]
    gbt_ben = sample_rows(tr_benign, max(GBT_MAX_ROWS - len(tr_mal), 1), rng)
    gbt_idx = np.sort(np.r_[tr_mal, gbt_ben])
    benign_weight = len(tr_benign) / len(gbt_ben)
    gbt_w = np.where(d.label[gbt_idx] == 1, 1.0, benign_weight)
    gbt = HistGradientBoostingClassifier(random_state=SEED, **GBT).fit(
        d.X[gbt_idx], d.label[gbt_idx], sample_weight=gbt_w)
    gtrees, gbase = gbt_trees(gbt)
    gbt_meta = dict(base_meta, output="raw margin (logit of P(malicious)); apply the sigmoid",
                    n_trees=len(gtrees), threshold_mode="BRANCH_LEQ, thresholds rounded toward -inf to float32")
    gbt_model = make_model(*tree_ensemble(gtrees, F, gbase), F,
                           "Gradient-boosted trees; Y = margin (logit)", gbt_meta, ml=True)
    timings["gbt"] = time.time() - t0
    log(f"gbt: {len(gbt_idx)} rows ({len(tr_mal)} malicious, benign weight {benign_weight:.3f}), "
        f"{len(gtrees)} trees, base {gbase:.6f} ({timings['gbt']:.1f}s)")

    models = {"iforest": if_model, "autoencoder": ae_model, "gbt": gbt_model}
    model_bytes = {k: m.SerializeToString() for k, m in models.items()}
    sessions = {k: ort_session(b) for k, b in model_bytes.items()}

    # ---- edge rows (also in golden.json) ------------------------------------------------------
    # All zeros, large and negative values, and rows sitting exactly on float32 split thresholds
    # (and one float32 step above), which pin down the branch comparison.
    Xtr = d.X[tr_idx]
    base_row = np.median(d.X[va_idx[d.label[va_idx] == 0]], axis=0).astype(np.float32)
    edge = [np.zeros(F, np.float32),
            np.full(F, 1e6, np.float32),
            np.full(F, -1e6, np.float32),
            (Xtr.max(axis=0) * 4 + 1).astype(np.float32),
            Xtr.min(axis=0).astype(np.float32)]
    edge_desc = ["edge: all zeros", "edge: all 1e6", "edge: all -1e6", "edge: 4 * training max + 1",
                 "edge: training min"]
    seen = set()
    for name, tr_list in (("iforest", trees), ("gbt", gtrees)):
        for k, t in enumerate(tr_list[:3]):
            f, thr = int(t["feature"][0]), floor_f32([t["threshold"][0]])[0]  # the root split
            if (f, float(thr)) in seen:
                continue
            seen.add((f, float(thr)))
            for v, where in ((thr, "on"), (np.nextafter(thr, np.float32(np.inf)), "one float32 step above")):
                r = base_row.copy()
                r[f] = v
                edge.append(r)
                edge_desc.append(f"edge: median benign row, {d.feature_names[f]} {where} the root threshold "
                                 f"of {name} tree {k}")
    edge = np.array(edge, dtype=np.float32)
    # NaN rows: only for golden.json (scikit-learn's forest rejects NaN, and the CSV never has
    # one). No node sets nodes_missing_value_tracks_true unless the boosted trees learned it, so NaN
    # takes the false (right) branch; the autoencoder returns NaN.
    nan_rows = [np.full(F, np.nan, np.float32)]
    nan_desc = ["nan: all NaN"]
    f_gbt_root = int(gtrees[0]["feature"][0])
    for f in dict.fromkeys([f_gbt_root, int(trees[0]["feature"][0])]):
        r = base_row.copy()
        r[f] = np.nan
        nan_rows.append(r)
        nan_desc.append(f"nan: median benign row, {d.feature_names[f]} NaN")

    # ---- check the ONNX models against scikit-learn ------------------------------------------
    t0 = time.time()
    Xcheck = np.concatenate([d.X[va_idx], edge])
    eh = ort_run(sessions["iforest"], Xcheck)
    if_score_ort = np.power(2.0, -eh.astype(np.float64) / c_max)
    if_score_skl = -iforest.score_samples(Xcheck)
    diff_if = float(np.abs(if_score_ort - if_score_skl).max())
    ae_ort = ort_run(sessions["autoencoder"], Xcheck).astype(np.float64)
    Zc = (Xcheck.astype(np.float64) - mean32) / std32
    ae_ref = ((mlp.predict(Zc) - Zc) ** 2).mean(axis=1)
    diff_ae = float((np.abs(ae_ort - ae_ref) / np.maximum(1.0, np.abs(ae_ref))).max())
    gbt_ort = ort_run(sessions["gbt"], Xcheck).astype(np.float64)
    gbt_skl = gbt.decision_function(Xcheck)
    diff_gbt = float(np.abs(gbt_ort - gbt_skl).max())
    # Other threshold encodings of the same trees, for the record (not shipped); on at most
    # 100,000 validation rows plus the edge rows.
    sub = np.r_[np.arange(min(nv_check := len(va_idx), 100_000)), np.arange(nv_check, len(Xcheck))]

    def variant(tr, base, mode, rounding):
        m = make_model(*tree_ensemble(tr, F, base, mode, rounding), F, "", base_meta, ml=True)
        return ort_run(ort_session(m.SerializeToString()), Xcheck[sub]).astype(np.float64)
    variants = {}
    for mode, rounding in [("BRANCH_LEQ", "nearest"), ("BRANCH_LT", "nearest"), ("BRANCH_LT", "floor")]:
        vi = np.power(2.0, -variant(trees, 0.0, mode, rounding) / c_max)
        vg = variant(gtrees, gbase, mode, rounding)
        variants[f"{mode}/{rounding}"] = dict(
            rows=int(len(sub)),
            iforest_max_abs_diff=float(np.abs(vi - if_score_skl[sub]).max()),
            iforest_rows_differing=int((np.abs(vi - if_score_skl[sub]) > 1e-5).sum()),
            gbt_max_abs_diff=float(np.abs(vg - gbt_skl[sub]).max()),
            gbt_rows_differing=int((np.abs(vg - gbt_skl[sub]) > 1e-4).sum()))
    checks = dict(rows=len(Xcheck),
                  iforest_score_max_abs_diff=diff_if,
                  autoencoder_mse_max_rel_diff=diff_ae,
                  gbt_margin_max_abs_diff=diff_gbt,
                  other_threshold_encodings=variants)
    timings["check"] = time.time() - t0
    log(f"onnxruntime vs scikit-learn on {len(Xcheck)} rows (validation + edge rows):")
    log(f"  iforest anomaly score  max |ort - sklearn| = {diff_if:.3g}  (BRANCH_LEQ, thresholds floored to f32)")
    log(f"  autoencoder MSE        max rel diff        = {diff_ae:.3g}  (float32 graph vs float64 sklearn)")
    log(f"  gbt margin             max |ort - sklearn| = {diff_gbt:.3g}")
    for k, v in variants.items():
        log(f"  (not used) {k:20s} iforest max diff {v['iforest_max_abs_diff']:.3g} "
            f"({v['iforest_rows_differing']} rows), gbt max diff {v['gbt_max_abs_diff']:.3g} "
            f"({v['gbt_rows_differing']} rows)")
    if diff_if > 1e-5 or diff_ae > 1e-3 or diff_gbt > 1e-4:
        sys.exit("ONNX export does not match scikit-learn")

    # ---- validation scores ------------------------------------------------------------------
    t0 = time.time()
    nv = len(va_idx)
    yv = d.label[va_idx]
    sv = d.scenario[va_idx]
    s_if = if_score_ort[:nv]
    s_ae = np.log(ae_ort[:nv] + 1e-6)
    s_gbt = gbt_ort[:nv]
    s_rules = d.rules_score[va_idx]
    comb_names = ["rules_score", "iforest_score", "autoencoder_log_mse", "gbt_margin"]
    C = np.column_stack([s_rules, s_if, s_ae, s_gbt])

    def fit_combiner(Cx, y):
        mu, sd = Cx.mean(axis=0), Cx.std(axis=0)
        sd = np.where(sd < 1e-12, 1.0, sd)
        lr = LogisticRegression(C=1.0, max_iter=2000).fit((Cx - mu) / sd, y)
        w = lr.coef_[0] / sd                       # back to raw inputs: logit = b + w . x
        b = float(lr.intercept_[0] - np.sum(lr.coef_[0] * mu / sd))
        return b, w

    # Out-of-fold combined score: 2 folds by user, so the reported metrics are not on fitted rows.
    va_users, va_inv = np.unique(d.user_id[va_idx], return_inverse=True)
    fold = np.array([user_fold(u) for u in va_users])[va_inv]
    s_comb = np.zeros(nv)
    for k in (0, 1):
        if d.label[va_idx][fold != k].sum() == 0:
            sys.exit("a combiner fold has no malicious rows")
        b, w = fit_combiner(C[fold != k], yv[fold != k])
        s_comb[fold == k] = b + C[fold == k] @ w
    comb_b, comb_w = fit_combiner(C, yv)          # the shipped combiner: all validation users
    s_comb_final = comb_b + C @ comb_w

    scores = {"rules_score": s_rules, "iforest": s_if, "autoencoder": s_ae, "gbt": s_gbt,
              "combined": s_comb}
    overall = {k: metrics(yv, s) for k, s in scores.items()}
    ref = metrics_sklearn(yv, s_comb)
    if any(abs(ref[k] - overall["combined"][k]) > 2e-6 for k in ref):
        sys.exit(f"metrics() disagrees with scikit-learn: {overall['combined']} vs {ref}")
    per_scen = {}
    for scen in sorted(set(sv[yv == 1])):
        mask = (yv == 0) | ((sv == scen) & (yv == 1))
        per_scen[scen] = {k: metrics(yv[mask], s[mask]) for k, s in scores.items()}

    # Suggested thresholds on the combined logit: the benign-validation quantiles (out-of-fold).
    benign_comb = np.sort(s_comb[yv == 0])
    thresholds = {}
    for name, fpr in [("fpr_1pct", 0.01), ("fpr_0_1pct", 0.001)]:
        k = int(math.floor(len(benign_comb) * (1 - fpr)))
        t = float(benign_comb[min(k, len(benign_comb) - 1)])
        flagged = s_comb > t
        thresholds[name] = dict(
            target_fpr=fpr, combined_logit=round(t, 6), probability=round(1 / (1 + math.exp(-t)), 6),
            score_0_100=round(100 / (1 + math.exp(-t)), 3),
            validation_fpr=round(float(flagged[yv == 0].mean()), 6),
            validation_tpr=round(float(flagged[yv == 1].mean()), 6),
            flagged_rate_by_scenario={s: round(float(flagged[sv == s].mean()), 6) for s in sorted(set(sv))})
    # Calibration of the 0-100 score by benign false-positive rate (of the shipped combiner):
    # score = 20 * log10(1 / FPR), so 40 = 1% of benign events score this high, 60 = 0.1%,
    # 80 = 0.01%. Knots at benign quantiles; the server interpolates linearly between them.
    benign_final = np.sort(s_comb_final[yv == 0])
    calibration = []
    for fpr in [0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005, 0.0002, 0.0001]:
        if fpr * len(benign_final) < 5:
            break
        t = float(benign_final[min(int(math.floor(len(benign_final) * (1 - fpr))), len(benign_final) - 1)])
        if calibration and t <= calibration[-1][0]:
            continue
        calibration.append([round(t, 6), round(20 * math.log10(1 / fpr), 3)])
    baselines = {n: round(float(np.median(C[yv == 0][:, i])), 6) for i, n in enumerate(comb_names)}
    timings["evaluate"] = time.time() - t0

    # ---- golden rows --------------------------------------------------------------------------
    grng = np.random.default_rng(SEED + 1)
    va_benign_normal = va_idx[(yv == 0) & (sv == "normal")]
    va_lookalike = va_idx[(yv == 0) & (sv != "normal")]
    va_mal = va_idx[yv == 1]
    pick = []
    n_edge = len(edge) + len(nan_rows)
    n_rest = 64 - n_edge
    n_mal = min(len(va_mal), n_rest * 3 // 8)
    n_look = min(len(va_lookalike), n_rest // 8)
    mal_scen = sorted(set(d.scenario[va_mal]))
    for i in range(n_mal):  # round-robin over attack scenarios
        cand = va_mal[d.scenario[va_mal] == mal_scen[i % len(mal_scen)]]
        pick.append(cand[grng.integers(len(cand))])
    pick += list(grng.choice(va_lookalike, size=n_look, replace=False)) if n_look else []
    pick += list(grng.choice(va_benign_normal, size=n_rest - len(pick), replace=False))
    pick = list(dict.fromkeys(int(i) for i in pick))
    G = np.concatenate([d.X[pick], edge, np.array(nan_rows)]).astype(np.float32)
    g_desc = [f"{d.event_id[i]} {d.scenario[i]} label={d.label[i]}" for i in pick] + edge_desc + nan_desc
    assert len(g_desc) == len(G)

    def js(v):  # NaN is null in golden.json
        return None if np.isnan(v) else float(v)
    golden_out = {k: [js(v) for v in ort_run(s, G)] for k, s in sessions.items()}
    golden = dict(
        model_version=args.model_version,
        feature_names=d.feature_names,
        note=("inputs are float32 values (written as their exact float64; null = NaN); outputs are "
              f"onnxruntime {onnxruntime.__version__} CPU, 1 thread (null = NaN). Pass when "
              "|rust - expected| <= tolerance * max(1, |expected|)."),
        tolerance=1e-4,
        iforest_c=c_max,
        rows=g_desc,
        inputs=[[js(v) for v in row] for row in G],
        outputs=golden_out)

    # ---- write -------------------------------------------------------------------------------
    sizes = {}
    for k, b in model_bytes.items():
        p = out_dir / f"{k}.onnx"
        p.write_bytes(b)
        sizes[k] = len(b)
        if len(b) > 2 * 1024 * 1024:
            log(f"WARNING: {p.name} is {len(b)} bytes (> 2 MB)")
    (out_dir / "golden.json").write_text(json.dumps(golden, indent=1, allow_nan=False) + "\n")

    hyper = dict(
        split=dict(by="user", rule=f"sha256(user_id)[0:8] little-endian % 100 < {VALIDATION_PERCENT} -> validation",
                   seed=SEED),
        iforest=dict(IFOREST, random_state=SEED, trained_on="benign training rows",
                     max_samples_effective=int(iforest.max_samples_)),
        autoencoder=dict({k: (list(v) if isinstance(v, tuple) else v) for k, v in AUTOENCODER.items()},
                         random_state=SEED, trained_on="benign training rows", max_rows=AUTOENCODER_MAX_ROWS,
                         rows_used=int(len(ae_idx)), epochs_run=int(mlp.n_iter_), final_loss=float(mlp.loss_)),
        gbt=dict(GBT, model="sklearn HistGradientBoostingClassifier", random_state=SEED,
                 trained_on="all malicious training rows + benign training rows sampled to max_rows, "
                            "benign weighted by benign_weight", max_rows=GBT_MAX_ROWS,
                 rows_used=int(len(gbt_idx)), malicious_rows=int(len(tr_mal)),
                 benign_weight=round(float(benign_weight), 6)),
        combiner=dict(model="sklearn LogisticRegression C=1.0 on standardized inputs, weights given for raw inputs",
                      trained_on="validation users (all); metrics are 2-fold out-of-fold by user"))
    manifest = dict(
        model_version=args.model_version,
        producer=PRODUCER,
        feature_names=d.feature_names,
        models={
            "iforest": dict(file="iforest.onnx", output="mean path length E[h]",
                            score="2^(-Y / iforest_c), in (0, 1], higher = more anomalous"),
            "autoencoder": dict(file="autoencoder.onnx", output="reconstruction MSE",
                                score="ln(Y + 1e-6)"),
            "gbt": dict(file="gbt.onnx", output="margin (logit)", score="Y; P(malicious) = sigmoid(Y)"),
        },
        iforest_c=c_max,
        autoencoder_log_epsilon=1e-6,
        combiner=dict(
            inputs=comb_names,
            input_definitions={"rules_score": "Rust rule detectors' score",
                               "iforest_score": "2^(-iforest.Y / iforest_c)",
                               "autoencoder_log_mse": "ln(autoencoder.Y + 1e-6)",
                               "gbt_margin": "gbt.Y"},
            formula="logit = intercept + sum(weights[name] * input[name]); probability = sigmoid(logit); "
                    "score_0_100 = 100 * probability",
            intercept=round(comb_b, 9),
            weights={n: round(float(w), 9) for n, w in zip(comb_names, comb_w)},
            baselines=baselines),
        calibration=dict(
            knots=calibration,
            definition="[combined logit, score]: score = 20 * log10(1 / benign FPR) at that logit, "
                       "interpolated linearly; 40 = 1% FPR, 60 = 0.1%, 80 = 0.01%"),
        thresholds=thresholds,
        validation=dict(
            users=len(val_users), rows=int(nv), malicious_rows=int(yv.sum()),
            overall=overall, per_scenario=per_scen,
            note="per scenario: that scenario's malicious rows vs all benign validation rows; "
                 "'combined' is out-of-fold (2 folds by user)"),
        onnx_check=checks,
        hyperparameters=hyper,
        onnx=dict(ir_version=ONNX_IR_VERSION, opset=ONNX_OPSET, ai_onnx_ml_opset=ONNX_ML_OPSET,
                  tree_op=TREE_OP_DESC),
        versions=dict(python=sys.version.split()[0], numpy=np.__version__, scikit_learn=sklearn.__version__,
                      onnx=onnx.__version__, onnxruntime=onnxruntime.__version__),
        data=dict(data_info, features_csv_rows=len(d), users=int(len(users)),
                  scenario_rows=scen_all, scenario_label=scen_label),
    )
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")

    card = out_dir / "MODEL_CARD.md"
    held_out = preserved_held_out_section(card)
    card.write_text(model_card(manifest, d, len(tr_idx), len(users) - len(val_users), sizes, held_out))

    # ---- summary ------------------------------------------------------------------------------
    total = time.time() - t_start
    print()
    print(f"Traceo models {args.model_version} -> {out_dir}")
    print(f"validation: {len(val_users)} users, {nv} rows, {int(yv.sum())} malicious")
    print(metrics_table([(k, overall[k]) for k in scores]))
    print()
    print("per scenario ROC AUC / TPR@1%FPR:")
    names = list(scores)
    print("  " + f"{'scenario':24s}" + "".join(f"{n:>22s}" for n in names))
    for scen, mm in per_scen.items():
        print("  " + f"{scen:24s}" + "".join(
            f"{mm[n].get('roc_auc', float('nan')):>12.4f} /{mm[n].get('tpr_at_fpr_1pct', float('nan')):>7.4f}"
            for n in names))
    print()
    for k, v in sizes.items():
        print(f"{k + '.onnx':18s} {v:>9,d} bytes")
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()) + f", total {total:.1f}s")


def model_card(m: dict, d: Data, n_train_rows: int, n_train_users: int, sizes: dict, held_out: str) -> str:
    data = m["data"]
    hp = m["hyperparameters"]
    v = m["validation"]
    gen = data.get("generator")
    lines = [f"# Traceo scoring models — model card ({m['model_version']})", "",
             "Generated by `scoring/train/run` (`scoring/train/train.py`); do not edit by hand except the "
             "held-out evaluation section, which retraining preserves.", "",
             "## Data", ""]
    if gen:
        lines += [f"- Generator: `{gen}`",
                  f"- Seed {data.get('seed')}, {data.get('users')} users, {data.get('days')} days",
                  f"- events.jsonl: {data.get('events')} events; labels.jsonl: {data.get('labels')} lines"]
    else:
        lines += ["- Features CSV supplied directly (`run --features`); generator parameters unknown."]
    lines += [f"- Features CSV: {data['features_csv_rows']} rows, {data['users']} users",
              f"- Split by user: {m['hyperparameters']['split']['rule']}. Training: {n_train_users} users, "
              f"{n_train_rows} rows. Validation: {v['users']} users, {v['rows']} rows "
              f"({v['malicious_rows']} malicious).", "",
              "| scenario | label | rows |", "|---|---:|---:|"]
    for s, n in data["scenario_rows"].items():
        lines.append(f"| {s} | {data['scenario_label'][s]} | {n} |")
    lines += ["", "## Seeds and determinism", "",
              f"Seed {SEED} for the forest, the autoencoder, the boosted trees and row subsampling; the "
              "split and the combiner's folds are sha256 hashes of `user_id`. The same CSV gives the same "
              "files (onnxruntime run with 1 thread for the golden outputs).", "",
              "## Features (model input order)", ""]
    lines += [f"{i}. `{n}`" for i, n in enumerate(m["feature_names"])]
    ae, gb, fo = hp["autoencoder"], hp["gbt"], hp["iforest"]
    lines += ["", "Inputs are float32, already transformed by the Rust feature extractor.", "",
              "## Models", "",
              f"- **iforest.onnx** ({sizes['iforest']:,} bytes): scikit-learn IsolationForest, "
              f"{fo['n_estimators']} trees, max_samples {fo['max_samples_effective']}, all features, on benign "
              "training rows. Trees: " + m["onnx"]["tree_op"] + "; leaf weight "
              "(depth + c(n_leaf)) / n_trees, summed, so Y = E[h(x)]. Anomaly score = 2^(-Y/c) with "
              f"c = c({fo['max_samples_effective']}) = {m['iforest_c']:.6f} (metadata `iforest_c`).",
              f"- **autoencoder.onnx** ({sizes['autoencoder']:,} bytes): standardize (mean/std of benign "
              f"training rows; std < 1e-6 -> 1) then scikit-learn MLPRegressor {tuple(ae['hidden_layer_sizes'])}, "
              f"ReLU, identity output, adam, alpha {ae['alpha']}, batch {ae['batch_size']}, max {ae['max_iter']} "
              f"epochs ({ae['epochs_run']} run), on {ae['rows_used']} benign training rows "
              f"(cap {ae['max_rows']}). Y = mean over features of the squared reconstruction error.",
              f"- **gbt.onnx** ({sizes['gbt']:,} bytes): scikit-learn HistGradientBoostingClassifier, "
              f"{gb['max_iter']} trees, max depth {gb['max_depth']}, {gb['max_leaf_nodes']} leaves max, learning "
              f"rate {gb['learning_rate']}, l2 {gb['l2_regularization']}, min leaf {gb['min_samples_leaf']}, no "
              f"early stopping, on {gb['rows_used']} training rows: all {gb['malicious_rows']} malicious ones and a benign "
              f"sample (weight {gb['benign_weight']:.3f} each, so the margin is calibrated to the full training "
              f"set; cap {gb['max_rows']} rows). Same tree "
              "encoding, plus the model's baseline; Y = margin, P = sigmoid(Y).",
              "- **Combiner** (manifest.json `combiner`): logistic regression on "
              f"[{', '.join(m['combiner']['inputs'])}] fitted on the validation users; intercept "
              f"{m['combiner']['intercept']:.4f}, weights "
              + ", ".join(f"{k} {w:.4f}" for k, w in m['combiner']['weights'].items()) + ".", "",
              "## ONNX", "",
              f"IR version {m['onnx']['ir_version']}, opset {m['onnx']['opset']} (default domain), ai.onnx.ml "
              f"opset {m['onnx']['ai_onnx_ml_opset']}. Input `X` float32 [N, {len(m['feature_names'])}], output "
              "`Y` float32 [N, 1], N symbolic. Tree models (iforest, gbt): " + m["onnx"]["tree_op"] + ". "
              "Autoencoder: Sub, Div, MatMul, "
              "Add, Relu, Mul, ReduceMean (`axes` attribute = [1], keepdims 1). Metadata: "
              "`model_version`, `feature_names`, and `iforest_c` on the forest.", "",
              "Tree thresholds: scikit-learn sends x left when x <= t with t a float64 and x a float32. The "
              "export stores each threshold rounded toward -inf to float32 with mode `BRANCH_LEQ`, which is "
              "exactly equivalent for every float32 x. Measured with onnxruntime against scikit-learn "
              "(iforest: anomaly score, rows off by > 1e-5; gbt: margin, rows off by > 1e-4):", "",
              "| encoding | rows | iforest max abs diff (rows off) | gbt max abs diff (rows off) |",
              "|---|---:|---:|---:|",
              f"| BRANCH_LEQ, floor (shipped) | {m['onnx_check']['rows']} | "
              f"{m['onnx_check']['iforest_score_max_abs_diff']:.2g} (0) | "
              f"{m['onnx_check']['gbt_margin_max_abs_diff']:.2g} (0) |"]
    for k, vv in m["onnx_check"]["other_threshold_encodings"].items():
        mode, rnd = k.split("/")
        lines.append(f"| {mode}, {rnd} | {vv['rows']} | {vv['iforest_max_abs_diff']:.2g} "
                     f"({vv['iforest_rows_differing']}) | {vv['gbt_max_abs_diff']:.2g} ({vv['gbt_rows_differing']}) |")
    lines += ["", f"Autoencoder: float32 graph vs float64 scikit-learn, max relative MSE difference "
              f"{m['onnx_check']['autoencoder_mse_max_rel_diff']:.2g}.", "",
              "## Validation metrics", "",
              f"Held-out users ({v['users']} users, {v['rows']} rows, {v['malicious_rows']} malicious). Scores: "
              "rules_score; iforest 2^(-E[h]/c); autoencoder ln(MSE + 1e-6); gbt margin; combined = combiner "
              "logit, out-of-fold (2 folds by user).", "",
              "### All attacks", "",
              metrics_table(list(v["overall"].items())), ""]
    for scen, mm in v["per_scenario"].items():
        n_pos = next(iter(mm.values())).get("n_pos")
        lines += [f"### {scen} ({n_pos} malicious rows vs all benign)", "", metrics_table(list(mm.items())), ""]
    lines += ["### Suggested thresholds (combined logit, from benign validation rows, out-of-fold)", "",
              "| name | logit | probability | score 0-100 | validation FPR | validation TPR |",
              "|---|---:|---:|---:|---:|---:|"]
    for k, t in m["thresholds"].items():
        lines.append(f"| {k} | {t['combined_logit']:.4f} | {t['probability']:.6f} | {t['score_0_100']:.2f} | "
                     f"{t['validation_fpr']:.4f} | {t['validation_tpr']:.4f} |")
    lines += ["", "Flagged rate per scenario at these thresholds (benign look-alikes are false positives):", "",
              "| scenario | " + " | ".join(m["thresholds"]) + " |",
              "|---|" + "---:|" * len(m["thresholds"])]
    for s in data["scenario_rows"]:
        lines.append(f"| {s} | " + " | ".join(
            f"{t['flagged_rate_by_scenario'].get(s, float('nan')):.4f}" for t in m["thresholds"].values()) + " |")
    lines += ["", HELD_OUT_HEADING, "", held_out.rstrip("\n"), "",
              "## Limitations", "",
              "- Trained and validated on synthetic data from Traceo's own generator: the attacks are the "
              "generator's scenarios, and the metrics say how well the models separate those, not real "
              "attacks. Validation users come from the same generator run (same seed) as training users.",
              "- The combiner and the thresholds are fitted on the validation users; the combined metrics "
              "are out-of-fold within them, but the held-out evaluation above is the unbiased number.",
              "- Row caps: the autoencoder trains on a sample of benign rows, the boosted trees on every "
              "malicious row plus a reweighted benign sample (caps above, seed 7). The forest uses 256 rows "
              "per tree by design.",
              "- Per-scenario numbers rest on few incidents (the malicious row counts are in the headings; "
              "rows of one incident are correlated), so differences of a few points are noise.",
              "- The boosted trees are evaluated on the attack scenarios they were trained on; how well "
              "anything here catches a new kind of attack is not measured (a leave-one-scenario-out run "
              "would measure it).",
              ] + [f"- The combiner gives `{n}` a negative weight ({w:.4f}): given the gbt margin, unusual "
                   "but benign rows (look-alikes) weigh more than unusual attacks, so an attack that only the "
                   "unsupervised models flag scores lower, not higher. If the unsupervised models are meant to "
                   "catch the unseen, constrain their weights to be >= 0 or alert on them separately."
                   for n, w in m["combiner"]["weights"].items()
                   if n in ("iforest_score", "autoencoder_log_mse") and w < 0] + [
              "- Feature drift: the models assume the Rust feature extractor's transforms as of this "
              "model_version; any change to features means retraining (feature_names is in the metadata).",
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
