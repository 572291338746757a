"""Every function of the Python contract against the CLI's records for the same arguments,
bit for bit (DESIGN.md, Python contract; issue 10 item 5). Several argument sets per function,
with grids given as Python lists, numpy arrays and the CLI's own range text."""

import numpy as np
import pytest

import attnscale
from conftest import assert_same_records, run_cli

SIMPLEX = [
    dict(n=1024, rho=0.5, gamma=[1, 2, 3]),
    dict(n=[2, 10, 10**12], rho=[0.0, 0.3, 0.9], beta=[0.0, 0.5, 30.0], alpha=[0, 0.3],
         q=2.5, d=[5, 1000]),
    dict(n=4096, rho="0.02:0.98:7", gamma="0:4:41"),
    dict(n=[100, 1000, 10**6], rho=0.25, gamma=2.385, alpha=0.5, q=[0.5, 1.0]),
]


@pytest.mark.parametrize("args", SIMPLEX)
def test_simplex(cli, args):
    records, _ = run_cli("simplex", args)
    assert_same_records(attnscale.simplex(**args), records)


def test_simplex_numpy_grid(cli):
    rho = np.linspace(0.05, 0.95, 5)
    gamma = np.array([0.5, 1.5, 2.0, 7.25], dtype=np.float32)
    records, _ = run_cli("simplex", dict(n=512, rho=rho.tolist(),
                                         gamma=[float(g) for g in gamma]))
    assert_same_records(attnscale.simplex(n=np.int64(512), rho=rho, gamma=gamma), records)


def test_simplex_done_criterion(cli):
    # issue 10's Done: the three values the CLI prints.
    records, _ = run_cli("simplex", dict(n=1024, rho=0.5, gamma=[1, 2, 3]))
    lam = attnscale.simplex(n=1024, rho=0.5, gamma=[1, 2, 3])["lambda"]
    assert str(lam) == "[" + " ".join(r["lambda"] for r in records) + "]"


PHASE = [
    dict(n=32, d=16, rho=[0.2, 0.6], gamma=[0.5, 2.0], trials=3,
         metric=["lambda", "eta", "rho_out", "a_self", "entropy", "lambda_angle"]),
    dict(n=[8, 12], config="simplex", gamma=[1, 3], metric="eta", eta_method="exact"),
    dict(n=24, d=[4, 40], config="sphere", beta="0:20:3", metric="eta", probes=4, trials=2,
         precision="f32", seed=7, threads=1),
    dict(n=16, d=8, rho=0.5, gamma=[0.0, 1.0, 4.0], alpha=[0, 0.5], trials=[1, 4],
         metric="support,lambda", seed=11),
]


@pytest.mark.parametrize("args", PHASE)
def test_phase(cli, args):
    records, _ = run_cli("phase", args)
    assert_same_records(attnscale.phase(**args), records)


def test_phase_threads_do_not_matter(cli):
    args = dict(n=40, d=20, rho=0.4, gamma=[1, 2], trials=3, metric="eta")
    records, _ = run_cli("phase", dict(args, threads=2))
    assert_same_records(attnscale.phase(**args, threads=1), records)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_phase_tokens_array_equals_file(cli, tmp_path, dtype):
    x = np.random.default_rng(5).standard_normal((20, 7)).astype(dtype)
    path = tmp_path / "tokens.npy"
    np.save(path, x)
    args = dict(gamma=[0.5, 2.0], metric="lambda,eta,entropy", trials=2)
    records, _ = run_cli("phase", dict(args, tokens=str(path)))
    assert_same_records(attnscale.phase(tokens=x, **args), records)
    assert_same_records(attnscale.phase(tokens=str(path), **args), records)
    assert_same_records(attnscale.phase(tokens=path, **args), records)  # os.PathLike


QUERY = [
    dict(d=3, n=[100, 1000], tau_prime=[0.5, 1.0, 2.0], trials=20, theory=True),
    dict(d=[2, 5], n=500, beta="0:10:3", trials=[1, 5], seed=3),
    dict(d=3, tau_prime=[0.5, 1.0], trials=10, sampler="ppp", theory=True),
    dict(d=4, n=10**5, tau_prime=0.1, trials=4, threads=1),
]


@pytest.mark.parametrize("args", QUERY)
def test_query(cli, args):
    records, _ = run_cli("query", args)
    assert_same_records(attnscale.query(**args), records)


POLICIES = [
    dict(n=[4096, 131072]),
    dict(policy=["yarn", "deepseek", "longrope"], pos=[0, 100, 5000], factor=4.0,
         train_len=4096, mscale=1.0, mscale_all_dim=0.5, max_len=65536),
    dict(policy="qwen-logn,log-n,critical", n=[1000, 10**6], combine=True),
    dict(policy="yarn-dynamic", n=[2048, 8192, 65536], finetuned=True, max_len=8192,
         train_len=4096),
    dict(policy="all", n=[10, 100000], pos=[5, 9], d=64, slope=0.4, floor_scale=8192.0,
         attn_scale=0.1, beta_slope=0.2, temperature_len=1024, attention_factor=1.25),
]


@pytest.mark.parametrize("args", POLICIES)
def test_policies(cli, args):
    records, _ = run_cli("policies", args)
    assert_same_records(attnscale.policies(**args), records)


def test_policy_list(cli):
    records, _ = run_cli("policies", dict(list=True))
    assert_same_records(attnscale.policy_list(), records)


def split(records):
    out = {"row": [], "summary": [], "policy": []}
    for r in records:
        r = dict(r)
        out[r.pop("record")].append(r)
    return out


def assert_same_diagnose(res, records):
    parts = split(records)
    assert_same_records(res["rows"], parts["row"])
    assert_same_records(res["policies"], parts["policy"])
    assert len(res["summary"]) == len(parts["summary"])
    for got, rec in zip(res["summary"], parts["summary"]):
        assert_same_records({k: [v] for k, v in got.items()}, [rec])
        assert all(isinstance(v, (float, int, str)) for v in got.values())


def logits(shape, dtype, seed=0, scale=3.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_diagnose_scores(cli, tmp_path, dtype):
    s = logits((60, 400), dtype)
    path = tmp_path / "scores.npy"
    np.save(path, s)
    records, _ = run_cli("diagnose", dict(scores=str(path)))
    assert_same_diagnose(attnscale.diagnose(scores=s), records)


def test_diagnose_causal_policies(cli, tmp_path):
    s = logits((2, 3, 80, 80), np.float32, seed=1)  # leading axes are more rows
    path = tmp_path / "scores.npy"
    np.save(path, s)
    args = dict(causal=True, policy="all", beta=[0.5, 1.0], window=3.0, train_len=64)
    records, _ = run_cli("diagnose", dict(args, scores=str(path)))
    res = attnscale.diagnose(scores=s, **args)
    assert len(res["policies"]["policy"]) > 0
    assert_same_diagnose(res, records)


def test_diagnose_q_k(cli, tmp_path):
    q = logits((50, 16), np.float32, seed=2, scale=1.0)
    k = logits((300, 16), np.float64, seed=3, scale=1.0)
    np.save(tmp_path / "q.npy", q)
    np.save(tmp_path / "k.npy", k)
    args = dict(policy="qwen-logn", beta=2.0)
    records, _ = run_cli("diagnose", dict(args, q=str(tmp_path / "q.npy"),
                                          k=str(tmp_path / "k.npy")))
    assert_same_diagnose(attnscale.diagnose(q=q, k=k, **args), records)
    # A file and an array mixed: the same input.
    assert_same_diagnose(attnscale.diagnose(q=str(tmp_path / "q.npy"), k=k, **args), records)


def test_key_order_is_the_records(cli, tmp_path):
    from conftest import run_cli_json
    assert list(attnscale.simplex(n=64, rho=0.5, gamma=1)) == \
        list(run_cli_json("simplex", dict(n=64, rho=0.5, gamma=1))[0])
    s = logits((50, 50), np.float32)
    np.save(tmp_path / "s.npy", s)
    recs = run_cli_json("diagnose", dict(scores=str(tmp_path / "s.npy"), policy="all",
                                          causal=True))
    res = attnscale.diagnose(scores=s, policy="all", causal=True)
    by_kind = {}
    for r in recs:
        by_kind.setdefault(r["record"], [k for k in r if k != "record"])
    assert list(res["rows"]) == by_kind["row"]
    assert list(res["summary"][0]) == by_kind["summary"]
    assert list(res["policies"]) == by_kind["policy"]
