"""Argument conversion and errors (DESIGN.md, Python contract; issue 10 item 5): zero-copy
input of C-contiguous arrays, the documented copy of other layouts, float16, 1-D, empty,
NaN/Inf, integer, bool and complex inputs, and the exception classes with the library's
message."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import attnscale
from attnscale import _ext
from conftest import BUILD, assert_same_records, cli_error, run_cli


def logits(shape, dtype=np.float32, seed=0):
    return (3 * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def same_diagnose(a, b):
    for part in ("rows", "policies"):
        assert list(a[part]) == list(b[part])
        for k in a[part]:
            x, y = np.asarray(a[part][k]), np.asarray(b[part][k])
            if x.dtype.kind == "f":
                assert np.array_equal(x.view(np.int64), y.view(np.int64)) or \
                    np.array_equal(x, y, equal_nan=True), k
            else:
                assert np.array_equal(x, y), k
    assert a["summary"] == b["summary"] or repr(a["summary"]) == repr(b["summary"])


# ----------------------------------------------------------------------------
# Zero copy

@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_c_contiguous_reaches_the_library_in_place(dtype):
    # The address handed to ats_array_wrap is the array's own buffer: exact, independent of
    # the allocator and of other processes, hence the primary check.
    a = logits((64, 33), dtype)
    address, copied, name, shape = _ext._array_address(a)
    assert address == a.ctypes.data and not copied
    assert name == np.dtype(dtype).name and shape == a.shape
    view = a[10:20]  # a C-contiguous view: still no copy
    address, copied, _, _ = _ext._array_address(view)
    assert address == view.ctypes.data and not copied


@pytest.mark.parametrize("make", [lambda a: a[:, ::2], lambda a: a.T, lambda a: np.asfortranarray(a)])
def test_non_contiguous_is_copied_once_with_the_same_results(make):
    a = logits((40, 64))
    v = make(a)
    address, copied, _, shape = _ext._array_address(v)
    assert copied and shape == v.shape
    same_diagnose(attnscale.diagnose(scores=v, beta=[0.5, 2.0]),
                  attnscale.diagnose(scores=np.ascontiguousarray(v), beta=[0.5, 2.0]))


RSS_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import attnscale
    # VmHWM is this process's own peak: ru_maxrss also carries the peak of the process that
    # spawned it (Linux keeps it across exec, and subprocess may vfork the test runner).
    def peak():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024.0
    a = np.ones((25000, 4096), np.float32)          # 410 MB, every page touched
    x = a if sys.argv[1] == "contiguous" else a[:, ::2]
    before = peak()
    try:
        attnscale.diagnose(scores=x, window=0.5)   # converted, then refused by run_alloc
    except ValueError:
        pass
    print(peak() - before)
""")


def rss_growth(layout):
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    p = subprocess.run([sys.executable, "-c", RSS_SCRIPT, layout], capture_output=True,
                       text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return float(p.stdout.split()[-1])


def test_large_float32_array_is_not_copied():
    # Peak RSS of a fresh process: a 410 MB C-contiguous float32 array passed in grows it by
    # far less than a copy would (410 MB; 820 MB as doubles), while a strided view of half
    # of it grows it by about that half (the check can see a copy).
    assert rss_growth("contiguous") < 40
    assert rss_growth("strided") > 150


# ----------------------------------------------------------------------------
# Data arrays: dtypes, shapes, values

def test_float16_scores_are_exact():
    s = logits((30, 100), np.float16, seed=4)
    same_diagnose(attnscale.diagnose(scores=s), attnscale.diagnose(scores=s.astype(np.float64)))


def test_float16_tokens_refused_by_the_library():
    with pytest.raises(ValueError, match="tokens: float16 is not supported"):
        attnscale.phase(tokens=logits((8, 4), np.float16), gamma=1)


def test_one_dimensional_scores_are_one_row(cli, tmp_path):
    s = logits(500, np.float64, seed=6)
    np.save(tmp_path / "s.npy", s)
    records, _ = run_cli("diagnose", dict(scores=str(tmp_path / "s.npy")))
    res = attnscale.diagnose(scores=s)
    assert len(res["rows"]["row"]) == 1
    rows = [dict(r) for r in records if r["record"] == "row"]
    for r in rows:
        del r["record"]
    assert_same_records(res["rows"], rows)


def test_one_dimensional_tokens_refused():
    with pytest.raises(ValueError, match=r"tokens: an \(n, d\) array is needed, not 1 axes"):
        attnscale.phase(tokens=np.ones(8), gamma=1)


@pytest.mark.parametrize("shape", [(0, 10), (5, 0), (0,)])
def test_empty_scores(shape):
    with pytest.raises(ValueError, match="the input has no logits"):
        attnscale.diagnose(scores=np.zeros(shape, np.float32))


def test_empty_tokens():
    with pytest.raises(ValueError, match="tokens: an empty array"):
        attnscale.phase(tokens=np.zeros((0, 4)), gamma=1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_name_row_and_column(cli, tmp_path, bad):
    s = logits((6, 20))
    s[3, 7] = bad
    np.save(tmp_path / "s.npy", s)
    status, stderr = cli_error("diagnose", dict(scores=str(tmp_path / "s.npy")))
    with pytest.raises(ValueError) as e:
        attnscale.diagnose(scores=s)
    assert "row 3" in str(e.value) and "column 7" in str(e.value)
    assert status == 1 and str(e.value) in stderr


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_tokens_name_the_row(bad):
    x = logits((8, 4))
    x[5, 1] = bad
    with pytest.raises(ValueError, match="row 5"):
        attnscale.phase(tokens=x, gamma=1)


@pytest.mark.parametrize("dtype,name", [(np.int64, "int64"), (np.int32, "int32"),
                                        (np.uint8, "uint8"), (np.bool_, "bool"),
                                        (np.complex64, "complex64"),
                                        (np.complex128, "complex128")])
def test_wrong_array_dtypes(dtype, name):
    a = np.ones((4, 8), dtype)
    with pytest.raises(ValueError, match=rf"scores: dtype {name} is not supported"):
        attnscale.diagnose(scores=a)
    with pytest.raises(ValueError, match=rf"tokens: dtype {name} is not supported"):
        attnscale.phase(tokens=a, gamma=1)
    with pytest.raises(ValueError, match=rf"^k: dtype {name}"):
        attnscale.diagnose(q=np.ones((4, 8), np.float32), k=a)


def test_non_native_byte_order():
    with pytest.raises(ValueError, match="non-native byte order"):
        attnscale.diagnose(scores=np.ones((4, 8), dtype=">f4"))


def test_memoryview_and_array_interface():
    s = logits((20, 30))
    same_diagnose(attnscale.diagnose(scores=memoryview(s)), attnscale.diagnose(scores=s))

    class Wrapper:  # __array__ only (as torch tensors are seen)
        def __array__(self, dtype=None):
            return s
    same_diagnose(attnscale.diagnose(scores=Wrapper()), attnscale.diagnose(scores=s))


def test_torch_cpu_tensor():
    torch = pytest.importorskip("torch", reason="python3-torch is not installed")
    s = logits((20, 30))
    t = torch.from_numpy(s)
    same_diagnose(attnscale.diagnose(scores=t), attnscale.diagnose(scores=s))
    x = torch.randn(16, 8, dtype=torch.float64)
    assert_same = attnscale.phase(tokens=x, gamma=[1, 2])
    ref = attnscale.phase(tokens=x.numpy(), gamma=[1, 2])
    assert np.array_equal(assert_same["value"], ref["value"])
    r = attnscale.simplex(n=torch.tensor([64, 128]), rho=torch.tensor(0.5), gamma=1)
    assert list(r["n"]) == [64, 128]


# ----------------------------------------------------------------------------
# Numeric options

def test_numbers_in_every_form_agree():
    ref = attnscale.simplex(n=[64, 128], rho=[0.25, 0.5], gamma=[1.0, 2.0])
    forms = [
        dict(n=(64, 128), rho=np.array([0.25, 0.5]), gamma=np.array([1, 2], np.int64)),
        dict(n=np.array([64, 128], np.int32), rho=np.array([0.25, 0.5], np.float32),
             gamma=np.array([1, 2], np.float16)),
        dict(n="64,128", rho="0.25:0.5:2", gamma=range(1, 3)),
        dict(n=[np.int64(64), 128.0], rho=[np.float32(0.25), np.float64(0.5)],
             gamma=np.array([[1.0, 2.0]])[0]),  # a 1-D view of a 2-D array
        dict(n=np.array([64, 256, 128])[::2], rho=[0.25, 0.5], gamma=[1, 2]),  # strided
    ]
    for f in forms:
        r = attnscale.simplex(**f)
        for k in ref:
            assert np.array_equal(np.asarray(r[k]), np.asarray(ref[k])), (f, k)
    assert attnscale.simplex(n=np.array(64), rho=0.5, gamma=1)["n"].tolist() == [64]  # 0-d


def test_cli_range_text_is_the_cli_values(cli):
    records, _ = run_cli("simplex", dict(n="2:1000000:7:log", rho=0.5, gamma="0:4:9"))
    assert_same_records(attnscale.simplex(n="2:1000000:7:log", rho=0.5, gamma="0:4:9"), records)


@pytest.mark.parametrize("value,match", [
    ([], "n: an empty sequence"),
    (np.array([]), "n: an empty array"),
    (np.ones((2, 2)), "n: a number, a sequence or a 0-d or 1-D array is needed, not a 2-D"),
    (np.array([1 + 2j]), "n: dtype complex128 is not supported"),
    (np.array([True]), "n: dtype bool is not supported"),
    (2**60 + 1, r"n: integer 1152921504606846977 is not exact as a double"),
    (np.array([2**60 + 1]), "n: element 0 is an integer beyond 2\\^53"),
    ("3:x", "n: '3:x': a range is lo:hi:k"),
])
def test_bad_values(value, match):
    with pytest.raises(ValueError, match=match):
        attnscale.simplex(n=value, rho=0.5, gamma=1)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused_by_the_library(value):
    with pytest.raises(ValueError, match=r"^--gamma: .* is not a number >= 0"):
        attnscale.simplex(n=8, rho=0.5, gamma=[1, value])
    # A NUMBER option's NaN would mean "absent" to the library: refused here.
    with pytest.raises(ValueError, match=r"^(--)?seed: .* is not an integer"):
        attnscale.query(d=3, n=10, tau_prime=1, seed=value)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: attnscale.simplex(n=True, rho=0.5, gamma=1), TypeError, "n: a bool is not a number"),
    (lambda: attnscale.simplex(n=[8, [9]], rho=0.5, gamma=1), TypeError, "a flat sequence"),
    (lambda: attnscale.simplex(n=b"8", rho=0.5, gamma=1), TypeError, "n: expected numbers"),
    (lambda: attnscale.simplex(n=object(), rho=0.5, gamma=1), TypeError, "n: expected a number"),
    (lambda: attnscale.query(d=3, n=10, tau_prime=1, seed=[1, 2]), ValueError,
     "seed takes one value, not 2"),
    (lambda: attnscale.query(d=3, n=10, tau_prime=1, sampler="bogus"), ValueError,
     "sampler: 'bogus' is not exact or ppp"),
    (lambda: attnscale.query(d=3, n=10, tau_prime=1, sampler=1), TypeError,
     "sampler: expected a str"),
    (lambda: attnscale.query(d=3, n=10, tau_prime=1, theory="yes"), TypeError,
     "theory: expected a bool"),
    (lambda: attnscale.phase(n=8, gamma=1, metric=["lambda", 3]), TypeError,
     "metric: a str or a sequence of str"),
    (lambda: attnscale.phase(n=8, gamma=1, metric=""), ValueError, "metric: empty value"),
    (lambda: _ext.run("simplex", {"bogus": 1}), TypeError,
     "simplex\\(\\) got an unexpected keyword argument 'bogus'"),
    (lambda: _ext.run("nosuch", {}), ValueError, "unknown command 'nosuch'"),
    (lambda: attnscale.diagnose(scores=np.ones((2, 3)), mask=np.ones((3, 2))),
     ValueError, r"--mask of shape \(3, 2\) does not broadcast to the logits' shape \(2, 3\)"),
    (lambda: attnscale.diagnose(scores=np.ones((2, 3)), mask=np.ones((2, 3), dtype=np.int8)),
     ValueError, "mask: dtype int8 is not supported"),
    (lambda: attnscale.diagnose(scores=np.ones((2, 3), dtype=bool)),
     ValueError, "scores: dtype bool is not supported"),
])
def test_argument_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_flags_accept_numpy_bools(cli):
    records, _ = run_cli("query", dict(d=3, n=100, tau_prime=1, trials=3, theory=True))
    assert_same_records(attnscale.query(d=3, n=100, tau_prime=1, trials=3,
                                        theory=np.bool_(True)), records)


# ----------------------------------------------------------------------------
# Library errors: classes and messages

@pytest.mark.parametrize("command,options,exc", [
    ("simplex", dict(n=10, rho=0.5), ValueError),                      # usage (EARG)
    ("simplex", dict(n=10, rho=0.5, gamma=1, beta=1), ValueError),
    ("phase", dict(n=8, gamma=1, probes=4), ValueError),
    ("query", dict(d=3, n=10), ValueError),
    ("diagnose", dict(scores="/nonexistent/s.npy"), OSError),           # EIO
    ("phase", dict(n=10**9, d=10**9, gamma=1), ValueError),             # beyond memory
])
def test_errors_carry_the_library_message(cli, command, options, exc):
    status, stderr = cli_error(command, options)
    with pytest.raises(exc) as e:
        getattr(attnscale, command)(**options)
    message = str(e.value)
    assert message and message in stderr, (message, stderr)
    assert status == (2 if exc is ValueError else 1)


def test_out_of_memory_is_memory_error():
    # A phase run within the machine's memory but beyond the process's address-space limit:
    # the library's ENOMEM is MemoryError (in a child, which the limit then ends with).
    script = textwrap.dedent("""
        import resource
        import attnscale
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        try:
            attnscale.phase(n=20000, d=20000, gamma=1, config="almost-simplex")
        except MemoryError as e:
            print("MemoryError:", e)
    """)
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    if os.environ.get("ATS_PY_SANITIZED") == "1":
        pytest.skip("an address-space limit cannot be set under AddressSanitizer's shadow map")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                       timeout=120)
    assert "MemoryError: " in p.stdout and "GB" in p.stdout, (p.stdout, p.stderr)


def test_bad_npy_file(tmp_path):
    p = tmp_path / "bad.npy"
    p.write_bytes(b"not a numpy file at all")
    with pytest.raises(ValueError, match="bad.npy"):
        attnscale.diagnose(scores=str(p))


def test_plot_file_equals_the_cli(cli, tmp_path):
    a, b = tmp_path / "py.png", tmp_path / "cli.png"
    args = dict(n=256, rho="0.05:0.95:10", gamma="0:5:11")
    attnscale.simplex(**args, plot=str(a))
    run_cli("simplex", dict(args, plot=str(b)))
    assert a.stat().st_size > 1000 and a.read_bytes() == b.read_bytes()
    with pytest.raises(ValueError, match="--metric chooses what --plot draws"):
        attnscale.simplex(**args, metric="eta")
    with pytest.raises(OSError, match="plot"):
        attnscale.simplex(**args, plot=str(tmp_path / "no" / "dir.png"))


def test_notes_are_warnings():
    with pytest.warns(attnscale.Note, match="d = 4 < n = 10"):
        attnscale.simplex(n=10, rho=0.5, gamma=1, d=4)


def test_version_and_build_info():
    assert attnscale.__version__ == _ext.VERSION and attnscale.__version__.count(".") == 2
    info = attnscale.build_info()
    assert attnscale.__version__ in info and "blas" in info.lower()
    cmds = attnscale.commands()
    assert list(cmds)[:5] == ["simplex", "phase", "query", "policies", "diagnose"]
    assert "tau_prime" in {o["python"] for o in cmds["query"]}


def test_without_numpy_lists_are_returned():
    code = ("import sys; sys.modules['numpy'] = None; import attnscale; "
            "r = attnscale.simplex(n=1024, rho=0.5, gamma=[1, 2, 3]); "
            "print(repr(r['lambda']), repr(r['regime']), repr(r['n']))")
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    ref = attnscale.simplex(n=1024, rho=0.5, gamma=[1, 2, 3])
    assert p.stdout.split("] [")[0] + "]" == repr(ref["lambda"].tolist())
    assert "['subcritical', 'critical', 'supercritical']" in p.stdout
    assert "[1024, 1024, 1024]" in p.stdout
