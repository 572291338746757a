"""Shared helpers of the Python package's tests (pytest; run by tests/python/run.sh).

The package is imported from $ATS_BUILD/python (PYTHONPATH, set by run.sh); the CLI it is
compared against is $ATS_BUILD/attnscale, run with --format csv, whose doubles read back to the
same double with float() and whose inf / nan stay distinct (JSON writes both as null).
"""

import csv
import io
import json
import math
import os
import struct
import subprocess

import pytest

BUILD = os.environ.get("ATS_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
CLI = os.path.join(BUILD, "attnscale")


def cli_text(v):
    """A Python number or list as the CLI's option text: repr() of a float reads back to the
    same double, so both sides get identical values."""
    if isinstance(v, (list, tuple)):
        return ",".join(cli_text(x) for x in v)
    if isinstance(v, bool):
        raise TypeError("flags have no text")
    if isinstance(v, float):
        return repr(v)
    return str(v)


def cli_args(options):
    """--name value pairs (dashes for underscores) from a dict; True is a bare flag."""
    args = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        args.append("--" + key.replace("_", "-"))
        if value is not True:
            args.append(cli_text(value))
    return args


def run_cli(command, options, check=True):
    """The CLI's records for options, as a list of {key: text} (CSV, empty cells dropped)."""
    p = subprocess.run([CLI, command, "--format", "csv", "-q"] + cli_args(options),
                       capture_output=True, text=True)
    if check:
        assert p.returncode == 0, f"attnscale {command} failed ({p.returncode}): {p.stderr}"
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    return [{k: v for k, v in r.items() if v != ""} for r in rows], p


def run_cli_json(command, options):
    """The CLI's JSON Lines records (dicts in the order the CLI writes the keys)."""
    p = subprocess.run([CLI, command, "-q"] + cli_args(options), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


def cli_error(command, options):
    """(exit status, stderr) of a CLI run that is meant to fail."""
    p = subprocess.run([CLI, command, "--format", "csv", "-q"] + cli_args(options),
                       capture_output=True, text=True)
    return p.returncode, p.stderr


def same_double(a, b):
    """Bit for bit (any NaN equals any NaN: the CSV does not carry payloads)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return struct.pack("<d", a) == struct.pack("<d", b)


def assert_same_records(result, records, skip=()):
    """Every key of every CLI record equals the Python column's entry, bit for bit; the
    Python result has exactly the CLI's keys (those present in any record)."""
    keys = [k for k in dict.fromkeys(k for r in records for k in r) if k not in skip]
    # Sets: the CSV's column order may be the run's declared one (diagnose); the order of the
    # records' own keys is checked against JSON Lines in test_parity.py.
    assert sorted(k for k in result if k not in skip) == sorted(keys), "keys differ from the CLI's"
    n = len(records)
    for k in keys:
        assert len(result[k]) == n, f"{k}: {len(result[k])} entries, the CLI has {n} records"
    bad = []
    for i, rec in enumerate(records):
        for k in keys:
            text, got = rec.get(k), result[k][i]
            if text is None:
                ok = got is None or (isinstance(got, float) and math.isnan(got))
            elif isinstance(got, str):
                ok = got == text
            elif hasattr(got, "dtype") and got.dtype.kind == "i" or isinstance(got, int):
                ok = int(got) == int(text)
            else:
                ok = same_double(float(got), float(text))
            if not ok:
                bad.append((i, k, got, text))
    assert not bad, f"{len(bad)} values differ from the CLI's, first: {bad[:5]}"


@pytest.fixture(scope="session")
def cli():
    if not os.access(CLI, os.X_OK):
        pytest.fail(f"{CLI} is not built (make)")
    return CLI


def pytest_configure(config):
    # The library's remarks (attnscale.Note) are expected in these runs; tests that check
    # them use pytest.warns.
    config.addinivalue_line("filterwarnings", "ignore::attnscale.Note")
