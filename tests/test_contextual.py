"""ContextualBT (prompt-conditioned BT / Davidson) against independent truths."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

import bradley
from bradley.errors import ComparisonDataError
from bradley.models.contextual import ContextEncoder, ContextualBT, _Problem, contextual_log_likelihood

ITEMS = ["a", "b", "c", "d"]


def _simulate(n, coef, x, seed=0, nu=None):
    """Battles among len(coef) items with theta(x) = coef[:, 0] + coef[:, 1:] @ x."""
    rng = np.random.default_rng(seed)
    k = coef.shape[0]
    left = rng.integers(0, k, n)
    right = (left + rng.integers(1, k, n)) % k
    xt = np.column_stack([np.ones(n), x])
    theta = xt @ coef.T
    d = theta[np.arange(n), left] - theta[np.arange(n), right]
    if nu is None:
        outcome = (rng.random(n) < expit(d)).astype(float)
    else:
        pa, pt = np.exp(d / 2), nu
        total = pa + pt + np.exp(-d / 2)
        u = rng.random(n) * total
        outcome = np.where(u < pa, 1.0, np.where(u < pa + pt, 0.5, 0.0))
    items = [f"m{i}" for i in range(k)]
    return bradley.Comparisons.from_codes(left, right, outcome, items=items)


def _categorical_data(seed=0, n=1500):
    rng = np.random.default_rng(seed)
    category = rng.choice(["code", "math", "poem"], n)
    level = {"code": 0, "math": 1, "poem": 2}
    skills = np.array([[1.0, 0.0, -0.5, -0.5], [-0.5, 1.0, 0.0, -0.5], [0.0, -1.0, 0.5, 0.5]])
    left = rng.integers(0, 4, n)
    right = (left + rng.integers(1, 4, n)) % 4
    s = skills[[level[c] for c in category]]
    d = s[np.arange(n), left] - s[np.arange(n), right]
    u = rng.random(n)
    outcome = np.where(u < 0.8 * expit(d), 1.0, np.where(u < 0.8, 0.0, 0.5))  # 20% ties
    data = bradley.Comparisons.from_codes(left, right, outcome, items=ITEMS)
    return data, pd.DataFrame({"category": category})


def test_zero_penalty_one_categorical_equals_separate_bt_per_category():
    data, context = _categorical_data()
    model = ContextualBT(penalty=0.0).fit(data, context)
    assert model.converged_
    for category in ["code", "math", "poem"]:
        rows = np.flatnonzero(context["category"].to_numpy() == category)
        separate = bradley.BradleyTerry().fit(data.take(rows))
        board = model.leaderboard({"category": [category]}).set_index("item")
        np.testing.assert_allclose(board.loc[ITEMS, "score"], separate.scores_ - separate.scores_.mean(), atol=1e-6)
        # delta-method standard errors equal those of the separate fit (mean-zero constraint)
        np.testing.assert_allclose(board.loc[ITEMS, "se"], separate.standard_errors().loc[ITEMS], rtol=1e-5)
    cat = model.category_leaderboards("category", context)
    poem = cat[cat["category"] == "poem"].set_index("item")
    rows = np.flatnonzero(context["category"].to_numpy() == "poem")
    assert (poem["n_prompts"] == len(rows)).all()
    separate = bradley.BradleyTerry().fit(data.take(rows))
    np.testing.assert_allclose(poem.loc[ITEMS, "score"], separate.scores_ - separate.scores_.mean(), atol=1e-6)


def test_no_context_is_the_global_davidson_model():
    data, _ = _categorical_data(seed=2, n=600)
    model = ContextualBT(ties="davidson", penalty=0.0).fit(data)
    glob = bradley.Davidson().fit(data)
    board = model.leaderboard().set_index("item")
    np.testing.assert_allclose(board.loc[ITEMS, "score"], glob.scores_ - glob.scores_.mean(), atol=1e-6)
    np.testing.assert_allclose(model.predict_proba(data), glob.predict_proba(data.items[data.left],
                                                                              data.items[data.right]), atol=1e-7)


def test_two_items_per_category_closed_form():
    # one pair, two contexts: the MLE of theta_a - theta_b is log(wins / losses) in each context
    left = np.zeros(20, int)
    right = np.ones(20, int)
    outcome = np.r_[np.ones(7), np.zeros(3), np.ones(2), np.zeros(8)]
    flag = np.r_[np.ones(10, bool), np.zeros(10, bool)]
    data = bradley.Comparisons.from_codes(left, right, outcome, items=["a", "b"])
    model = ContextualBT(penalty=0.0).fit(data, pd.DataFrame({"flag": flag}))
    theta = model.coefficients(pd.DataFrame({"flag": [True, False]}))
    np.testing.assert_allclose((theta["a"] - theta["b"]).to_numpy(), [np.log(7 / 3), np.log(2 / 8)], atol=1e-7)


@pytest.mark.parametrize("ties", ["none", "davidson"])
def test_infinite_penalty_is_the_global_model(ties):
    data, context = _categorical_data(seed=1)
    model = ContextualBT(ties=ties, penalty=np.inf).fit(data, context)
    glob = (bradley.BradleyTerry() if ties == "none" else bradley.Davidson()).fit(data)
    for category in ["code", "poem"]:
        board = model.leaderboard({"category": [category]}).set_index("item")
        np.testing.assert_allclose(board.loc[ITEMS, "score"], glob.scores_ - glob.scores_.mean(), atol=1e-6)
        np.testing.assert_allclose(board.loc[ITEMS, "se"], glob.standard_errors().loc[ITEMS], rtol=1e-4)
    if ties == "davidson":
        assert np.isclose(np.exp(model.tie_coef_.iloc[0]), glob.params_.loc["nu", "estimate"], rtol=1e-6)
    # the global model's predictions, three-way
    expected = glob.predict_proba(data.items[data.left], data.items[data.right])
    got = model.predict_proba(data, context)
    np.testing.assert_allclose(got if ties == "davidson" else got[:, 0], expected, atol=1e-7)
    # a very large finite penalty approaches it
    big = ContextualBT(ties=ties, penalty=1e9).fit(data, context)
    assert np.abs(big.coef_.iloc[:, 1:].to_numpy()).max() < 1e-4


@pytest.mark.parametrize("ties,tie_context", [("none", False), ("davidson", False), ("davidson", True)])
def test_gradient_and_hessian_vector_product_against_finite_differences(ties, tie_context):
    rng = np.random.default_rng(3)
    n, k, d = 60, 4, 3
    left = rng.integers(0, k, n)
    right = (left + rng.integers(1, k, n)) % k
    xt = np.column_stack([np.ones(n), rng.normal(size=(n, d))])
    outcome = rng.choice([0.0, 0.5, 1.0], n)
    problem = _Problem(left, right, xt, outcome, rng.uniform(0.5, 2, n), k, ties, tie_context, 0.7)
    theta = rng.normal(scale=0.5, size=problem.size)
    v = rng.normal(size=problem.size)
    h = 1e-6
    numeric = np.array([(problem.value(theta + h * e) - problem.value(theta - h * e)) / (2 * h)
                        for e in np.eye(problem.size)])
    np.testing.assert_allclose(problem.gradient(theta), numeric, atol=1e-7)
    hv = (problem.gradient(theta + h * v) - problem.gradient(theta - h * v)) / (2 * h)
    np.testing.assert_allclose(problem.hessp(theta, v), hv, atol=1e-6)


def test_tiny_data_matches_direct_scipy_maximisation_of_an_independent_likelihood():
    rng = np.random.default_rng(4)
    n = 80
    x = rng.normal(size=n)
    coef = np.array([[0.5, 0.8], [0.0, -0.4], [-0.5, -0.4]])
    data = _simulate(n, coef, x[:, None], seed=5, nu=0.4)
    penalty = 2.0
    model = ContextualBT(ties="davidson", tie_context=True, penalty=penalty).fit(data, pd.DataFrame({"x": x}))
    z = (x - x.mean()) / x.std()
    li, ri, o = data.left, data.right, data.outcome

    def negative(params):  # item 0 pinned at zero (reference coding), then centred for comparison
        b = np.vstack([np.zeros(2), params[:4].reshape(2, 2)])
        g = params[4:]
        theta = b[:, [0]] + b[:, [1]] * z
        dd = theta[li, np.arange(n)] - theta[ri, np.arange(n)]
        log_nu = g[0] + g[1] * z
        norm = np.logaddexp(np.logaddexp(dd / 2, -dd / 2), log_nu)
        ll = np.where(o == 1, dd / 2, np.where(o == 0, -dd / 2, log_nu)) - norm
        slopes = b[:, 1] - b[:, 1].mean()  # the model penalises the centred slopes
        return -ll.sum() + 0.5 * penalty * (slopes @ slopes + g[1] ** 2)

    best = minimize(negative, np.zeros(6), method="BFGS", options={"gtol": 1e-9})
    b = np.vstack([np.zeros(2), best.x[:4].reshape(2, 2)])
    b -= b.mean(axis=0)
    np.testing.assert_allclose(model.coef_.to_numpy(), b, atol=1e-5)
    np.testing.assert_allclose(model.tie_coef_.to_numpy(), best.x[4:], atol=1e-5)
    assert np.isclose(model.log_likelihood_, contextual_log_likelihood(
        (model.coefficients(pd.DataFrame({"x": x})).to_numpy()[np.arange(n), li]
         - model.coefficients(pd.DataFrame({"x": x})).to_numpy()[np.arange(n), ri]),
        best.x[4] + best.x[5] * z, o))


def test_simulation_recovers_the_interactions():
    rng = np.random.default_rng(6)
    n = 30_000
    x = rng.normal(size=(n, 2))
    coef = np.array([[0.6, 1.0, 0.0], [0.0, -0.5, 0.7], [-0.2, 0.0, -0.7], [-0.4, -0.5, 0.0]])
    data = _simulate(n, coef, x, seed=7)
    model = ContextualBT(penalty=1.0).fit(data, x)
    probe = rng.normal(size=(200, 2))
    truth = np.column_stack([np.ones(200), probe]) @ coef.T
    truth -= truth.mean(axis=1, keepdims=True)
    est = model.coefficients(probe).to_numpy()
    assert np.abs(est - truth).max() < 0.15
    # 95% delta-method intervals cover the truth for most items at a probe prompt
    covered = []
    for p in range(20):
        board = model.leaderboard(probe[p]).set_index("item")
        t = pd.Series(truth[p], index=data.items)
        covered.extend(((board["lower"] <= t[board.index]) & (t[board.index] <= board["upper"])).tolist())
    assert np.mean(covered) > 0.85


def test_auto_penalty_beats_global_on_held_out_and_scores_do_not_overflow():
    data, context = _categorical_data(seed=8, n=3000)
    train, test = np.arange(2000), np.arange(2000, 3000)
    model = ContextualBT(ties="davidson").fit(data.take(train), context.iloc[train])
    glob = ContextualBT(ties="davidson", penalty=np.inf).fit(data.take(train), context.iloc[train])
    assert set(model.penalty_path_["penalty"]) == set(model.penalty_grid)
    for kind in ["three-way", "binary"]:
        assert model.log_loss(data.take(test), context.iloc[test], kind) < glob.log_loss(
            data.take(test), context.iloc[test], kind) - 0.02
    prob = model.predict_proba(data.take(test), context.iloc[test])
    np.testing.assert_allclose(prob.sum(axis=1), 1.0)
    # scores of +-50 stay finite
    model._b[:, 0] = np.linspace(-50, 50, 4)
    extreme = model.predict_proba(data.take(test), context.iloc[test])
    assert np.isfinite(extreme).all() and np.isfinite(model.log_loss(data.take(test), context.iloc[test]))
    assert np.isfinite(contextual_log_likelihood(np.array([100.0, -100.0]), np.array([0.0, 0.0]),
                                                 np.array([0.0, 1.0])))
    assert np.isclose(contextual_log_likelihood(np.array([-100.0]), None, np.array([1.0])), log_expit(-100.0))


def test_fit_from_a_dataframe_with_context_columns_and_errors():
    frame = pd.DataFrame({"model_a": ["a", "b", "c", "a", "b", "c"] * 10,
                          "model_b": ["b", "c", "a", "c", "a", "b"] * 10,
                          "winner": ["model_a", "model_b", "tie", "model_b", "model_a", "both_bad"] * 10,
                          "math": [True, False] * 30, "score": np.arange(60) % 5})
    model = ContextualBT(ties="davidson", penalty=1.0).fit(frame, ["math", "score"])
    assert model.feature_names_ == ["math", "score"]
    assert model.log_loss(frame, ["math", "score"], "three-way") > 0
    with pytest.raises(ComparisonDataError, match="60 battles"):
        ContextualBT(penalty=1.0).fit(frame, frame[["math"]].iloc[:10])
    bad = frame.assign(score=frame["score"].where(frame.index != 7))
    with pytest.raises(ComparisonDataError, match=r"rows \[7\]"):
        ContextualBT(penalty=1.0).fit(bad, ["math", "score"])
    with pytest.raises(ComparisonDataError, match="no column"):
        model.leaderboard({"math": [True]})
    with pytest.raises(ComparisonDataError, match="pass context"):
        model.predict_proba(frame)
    with pytest.raises(ValueError, match="ties"):
        ContextualBT(ties="rao").fit(frame, ["math"])
    with pytest.warns(UserWarning, match="constant"):
        ContextualBT(penalty=1.0).fit(frame.assign(flat=1.0), ["math", "flat"])


def test_encoder_one_hot_reference_coding_and_standardisation():
    frame = pd.DataFrame({"tag": ["x", "y", "z", "x"], "v": [1.0, 2.0, 3.0, 6.0]})
    enc = ContextEncoder().fit(frame)
    assert enc.names_ == ["tag=y", "tag=z", "v"]
    pl = pytest.importorskip("polars")
    np.testing.assert_allclose(ContextEncoder().fit(pl.from_pandas(frame)).transform(frame), enc.transform(frame))
    out = enc.transform(frame)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1)


@pytest.mark.slow
def test_neural_version_learns_context_and_is_seeded():
    pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    n = 6000
    x = rng.normal(size=(n, 4))
    coef = np.zeros((4, 5))
    coef[:, 1] = [1.5, -1.5, 0.0, 0.0]
    coef[:, 2] = [0.0, 0.0, 1.0, -1.0]
    data = _simulate(n, coef, x, seed=10)
    train, test = np.arange(4500), np.arange(4500, n)
    kw = dict(kind="neural", hidden=16, epochs=60, patience=5, learning_rate=1e-2, batch_size=1024, seed=1)
    net = ContextualBT(**kw).fit(data.take(train), x[train])
    glob = ContextualBT(penalty=np.inf).fit(data.take(train), x[train])
    assert net.log_loss(data.take(test), x[test]) < glob.log_loss(data.take(test), x[test]) - 0.05
    again = ContextualBT(**kw).fit(data.take(train), x[train])
    np.testing.assert_allclose(net.coefficients(x[:5]), again.coefficients(x[:5]))
    board = net.leaderboard(x[0])
    assert board["se"].isna().all() and np.isclose(board["score"].sum(), 0, atol=1e-9)
    # category tables of the neural model average the prompts' coefficients
    frame = pd.DataFrame(x[:300], columns=["x0", "x1", "x2", "x3"]).assign(positive=lambda f: f["x0"] > 0)
    cats = net.category_leaderboards("positive", frame)
    mean = net.coefficients(x[:300][frame["positive"]]).mean()
    top = cats[cats["positive"]].set_index("item")["score"]
    np.testing.assert_allclose(top[mean.index], mean, atol=1e-12)
    assert top.index[0] == "m0"  # x0 > 0 favours item 0 (coefficient 1.5)


ARENA = Path(__file__).resolve().parents[2] / "shared" / "data" / "arena_human_preference_140k" / \
    "arena_human_preference_140k_battles.csv"
TAGS = ["creative_writing", "criteria_complexity", "criteria_creativity", "criteria_domain_knowledge",
        "criteria_problem_solving", "criteria_real_world", "criteria_specificity", "criteria_technical_accuracy",
        "if_flag", "math"]


@pytest.mark.slow
@pytest.mark.skipif(not ARENA.exists(), reason="shared arena data not available")
def test_arena_subsample_contextual_beats_global_on_held_out_battles():
    frame = pd.read_csv(ARENA, nrows=40_000)
    frame = frame[frame.model_a != frame.model_b].reset_index(drop=True)
    test = np.random.default_rng(0).random(len(frame)) < 0.25
    train, held = frame[~test].reset_index(drop=True), frame[test].reset_index(drop=True)
    glob = ContextualBT(ties="davidson", penalty=np.inf).fit(train, TAGS)
    model = ContextualBT(ties="davidson", penalty=300.0).fit(train, TAGS)
    assert model.converged_ and glob.converged_
    three = model.log_loss(held, TAGS, "three-way"), glob.log_loss(held, TAGS, "three-way")
    binary = model.log_loss(held, TAGS, "binary"), glob.log_loss(held, TAGS, "binary")
    assert three[0] < three[1] and binary[0] < binary[1]


def test_docs_python_examples_run():
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "contextual.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert len(blocks) >= 1
    for code in blocks:
        exec(compile(code, "docs/contextual.md", "exec"), {"__name__": "__docs__"})


@pytest.mark.filterwarnings("ignore:context column")  # the stub leaves some coordinates constant
def test_linear_model_on_stub_text_embeddings_beats_global():
    embeddings = pytest.importorskip("bradley.embeddings")
    rng = np.random.default_rng(12)
    n = 3000
    topic = rng.random(n) < 0.5
    filler = rng.choice(["please", "quickly", "explain", "write", "about", "short", "long"], (n, 3))
    texts = [("integral derivative equation " if t else "sonnet rhyme verse ") + " ".join(f) for t, f in
             zip(topic, filler, strict=True)]
    x = embeddings.StubEmbedder(dim=32).encode(texts)
    skill = np.where(topic[:, None], [[1.0, -0.5, -0.5]], [[-1.0, 0.0, 1.0]])
    left = rng.integers(0, 3, n)
    right = (left + rng.integers(1, 3, n)) % 3
    r = np.arange(n)
    outcome = (rng.random(n) < expit(skill[r, left] - skill[r, right])).astype(float)
    data = bradley.Comparisons.from_codes(left, right, outcome, items=["m0", "m1", "m2"])
    train, test = np.arange(2200), np.arange(2200, n)
    model = ContextualBT(penalty="auto").fit(data.take(train), x[train])
    glob = ContextualBT(penalty=np.inf).fit(data.take(train), x[train])
    assert model.log_loss(data.take(test), x[test]) < glob.log_loss(data.take(test), x[test]) - 0.03
    math_prompt = embeddings.StubEmbedder(dim=32).encode(["integral derivative equation please"])
    assert model.leaderboard(math_prompt)["item"].iloc[0] == "m0"


# ---------------------------------------------------------------- review fixes (issue 15)
def _reduced_map(k, p):
    """Linear map from free coefficients (items 0..k-2 per column) to vec(B) with sum_i B[i, c] = 0."""
    a = np.zeros((k * p, (k - 1) * p))
    for i in range(k - 1):
        for c in range(p):
            a[i * p + c, i * p + c] = 1.0
            a[(k - 1) * p + c, i * p + c] = -1.0
    return a


@pytest.mark.parametrize("ties", ["none", "davidson"])
def test_penalised_covariance_is_the_inverse_finite_difference_hessian_on_the_centred_subspace(ties):
    data, context = _categorical_data(seed=0, n=300)
    penalty = 30.0
    model = ContextualBT(ties=ties, penalty=penalty).fit(data, context)
    xt = np.column_stack([np.ones(data.n_comparisons), model.encoder_.transform(context)])
    k, p = model._b.shape
    li, ri, o = data.left, data.right, np.asarray(data.outcome, float)
    rows = np.arange(len(o))
    a = _reduced_map(k, p)
    n_free = a.shape[1] + (1 if ties == "davidson" else 0)

    def nll(free):  # independent penalised negative log-likelihood, written here
        b = (a @ free[: a.shape[1]]).reshape(k, p)
        theta = xt @ b.T
        d = theta[rows, li] - theta[rows, ri]
        if ties == "none":
            ll = o * log_expit(d) + (1 - o) * log_expit(-d)
        else:
            log_nu = free[-1]
            norm = np.logaddexp(np.logaddexp(d / 2, -d / 2), log_nu)
            ll = np.where(o == 1, d / 2, np.where(o == 0, -d / 2, log_nu)) - norm
        return -ll.sum() + 0.5 * penalty * float((b[:, 1:] ** 2).sum())

    free0 = np.r_[model._b[: k - 1].ravel(), model._g]
    h = 1e-3
    eye = np.eye(n_free) * h
    hess = np.empty((n_free, n_free))
    for i in range(n_free):
        for j in range(i, n_free):
            hess[i, j] = hess[j, i] = (nll(free0 + eye[i] + eye[j]) - nll(free0 + eye[i] - eye[j])
                                       - nll(free0 - eye[i] + eye[j]) + nll(free0 - eye[i] - eye[j])) / (4 * h * h)
    full = np.zeros((k * p + len(model._g), n_free))
    full[: k * p, : a.shape[1]] = a
    if ties == "davidson":
        full[-1, -1] = 1.0
    truth = full @ np.linalg.inv(hess) @ full.T
    np.testing.assert_allclose(model.covariance_, truth, rtol=1e-4, atol=1e-7 * np.abs(truth).max())
    assert np.linalg.eigvalsh(model.covariance_).min() > -1e-12
    # leaderboard se at a prompt = sqrt(x' Cov(B_i) x)
    x = xt[0]
    board = model.leaderboard(context.iloc[[0]]).set_index("item")
    se = [np.sqrt(x @ truth[i * p:(i + 1) * p, i * p:(i + 1) * p] @ x) for i in range(k)]
    np.testing.assert_allclose(board.loc[ITEMS, "se"], se, rtol=1e-4)


def test_log_losses_of_a_davidson_model_against_an_independent_computation():
    data, context = _categorical_data(seed=0, n=800)
    model = ContextualBT(ties="davidson", penalty=3.0).fit(data, context)
    xt = np.column_stack([np.ones(data.n_comparisons), model.encoder_.transform(context)])
    theta = xt @ model.coef_.to_numpy().T
    rows = np.arange(data.n_comparisons)
    d = theta[rows, data.left] - theta[rows, data.right]
    nu = np.exp(model.tie_coef_.iloc[0])
    pa, pt, pb = np.exp(d / 2), nu, np.exp(-d / 2)
    total = pa + pt + pb
    pa, pt, pb = pa / total, pt / total, pb / total
    o = np.asarray(data.outcome, float)
    assert (o == 0.5).sum() > 100
    three = -np.mean(np.where(o == 1, np.log(pa), np.where(o == 0, np.log(pb), np.log(pt))))
    decisive = o != 0.5
    binary = -np.mean(np.where(o[decisive] == 1, log_expit(d[decisive]), log_expit(-d[decisive])))
    q = pa + pt / 2
    soft = -np.mean(o * np.log(q) + (1 - o) * np.log(1 - q))
    assert np.isclose(model.log_loss(data, context, "three-way"), three, rtol=1e-10)
    assert np.isclose(model.log_loss(data, context, "binary"), binary, rtol=1e-10)
    assert np.isclose(model.log_loss(data, context, "soft"), soft, rtol=1e-10)
    # the soft score is proper: the true q minimises its expectation (checked on one battle's q)
    grid = np.linspace(0.01, 0.99, 99)
    expected = -(0.3 * np.log(grid) + 0.7 * np.log(1 - grid))
    assert np.isclose(grid[np.argmin(expected)], 0.3)


def test_auto_penalty_records_convergence_and_never_picks_a_failed_fit(monkeypatch):
    import bradley.models.contextual as contextual

    data, context = _categorical_data(seed=8, n=1500)
    good = ContextualBT(ties="davidson").fit(data, context)
    assert good.penalty_path_["converged"].all()
    best = good.penalty_
    real = contextual._minimise

    def failing(problem, start, tol, max_iter):  # the best grid fit "fails"
        theta, converged, n_iter = real(problem, start, tol, max_iter)
        return theta, converged and problem.penalty != best, n_iter

    monkeypatch.setattr(contextual, "_minimise", failing)
    with pytest.warns(bradley.errors.ConvergenceWarning, match=rf"penalty \[{best}\]"):
        model = ContextualBT(ties="davidson").fit(data, context)
    path = model.penalty_path_.set_index("penalty")
    assert not path.loc[best, "converged"] and path["converged"].sum() == len(path) - 1
    assert model.penalty_ != best
    ok = path[path["converged"]]
    assert model.penalty_ == ok["validation_log_loss"].idxmin()


def test_unknown_categorical_level_at_predict_time_raises_naming_column_values_and_rows():
    data, context = _categorical_data(seed=0, n=300)
    model = ContextualBT(penalty=1.0).fit(data, context)
    probe = pd.DataFrame({"category": ["code", "prose", "math", "prose", "chat"]})
    with pytest.raises(ComparisonDataError, match=r"'category'.*\['prose', 'chat'\].*rows \[1, 3, 4\]"):
        model.coefficients(probe)
    with pytest.raises(ComparisonDataError, match="not seen in training"):
        model.predict_proba(data.take(np.arange(5)), probe)


def test_category_leaderboards_expected_win_rate_averages_over_prompts():
    data, context = _categorical_data(seed=3, n=1500)
    context = context.assign(z=np.random.default_rng(0).normal(size=len(context)) * 2)
    model = ContextualBT(penalty=0.3).fit(data, context)
    model._b[:, -1] += np.array([1.5, -0.5, 0.0, -1.0])  # a strong nonlinear effect of z on the win rates
    cat = model.category_leaderboards("category", context)
    for value in ["code", "poem"]:
        rows = np.flatnonzero(context["category"].to_numpy() == value)
        theta = model.coefficients(context.iloc[rows]).loc[:, ITEMS].to_numpy()
        win = expit(theta[:, :, None] - theta[:, None, :])
        prompt_rates = ((win.sum(axis=2) - 0.5) / 3).mean(axis=0)  # each prompt's rate, then the mean
        table = cat[cat["category"] == value].set_index("item")
        np.testing.assert_allclose(table.loc[ITEMS, "expected_win_rate"], prompt_rates, atol=1e-12)
        at_mean = model.leaderboard(context.iloc[rows].assign(
            z=context["z"].iloc[rows].mean()).iloc[[0]]).set_index("item")
        np.testing.assert_allclose(table.loc[ITEMS, "score"], at_mean.loc[ITEMS, "score"], atol=1e-12)
        assert np.abs(table.loc[ITEMS, "expected_win_rate"] - at_mean.loc[ITEMS, "expected_win_rate"]).max() > 1e-3


def test_diverging_tie_slopes_raise():
    rng = np.random.default_rng(2)
    n = 600
    left = rng.integers(0, 3, n)
    right = (left + rng.integers(1, 3, n)) % 3
    flag = rng.random(n) < 0.5
    outcome = rng.choice([0.0, 1.0], n)
    outcome[flag & (rng.random(n) < 0.3)] = 0.5  # ties only when flag is set
    data = bradley.Comparisons.from_codes(left, right, outcome, items=["a", "b", "c"])
    with pytest.raises(bradley.errors.MLEDoesNotExistError, match="tie coefficients .* diverge"):
        ContextualBT(ties="davidson", tie_context=True, penalty=0.0, max_iter=2000).fit(
            data, pd.DataFrame({"flag": flag}))
