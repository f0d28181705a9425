#!/usr/bin/env python3
"""Example DOIN external domain plugin: a shifted quadratic.

metric(params) = sum_i (p_i - c_i)^2, where the centre c_i in [-1, 1] is derived from the
domain's data seed, so every evaluator computes the same problem from on-chain values only.

Protocol (docs/domain-plugins.md): one JSON request per line on stdin, one JSON response per
line on stdout. All numbers are decimal strings with at most nine fractional digits; this
plugin computes in integers (billionths) so every machine gets the same bits.

Usage in a node configuration:

    [[main.plugins]]
    name = "py-quadratic"
    command = ["python3", "mainchain/node/plugins/quadratic_plugin.py"]
"""

import hashlib
import json
import sys

SCALE = 10**9


def parse_fixed(s):
    """'-1.25' -> -1250000000; at most 9 fractional digits."""
    if not isinstance(s, str):
        raise ValueError("parameters must be decimal strings")
    neg = s.startswith("-")
    body = s[1:] if neg else s
    whole, _, frac = body.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()) or len(frac) > 9:
        raise ValueError("bad decimal: %r" % s)
    v = int(whole) * SCALE + int((frac or "0").ljust(9, "0"))
    return -v if neg else v


def format_fixed(v):
    sign = "-" if v < 0 else ""
    v = abs(v)
    return "%s%d.%09d" % (sign, v // SCALE, v % SCALE)


def centre(seed, i):
    h = hashlib.sha256(seed + i.to_bytes(4, "little")).digest()
    return int.from_bytes(h[:8], "little") % (2 * SCALE + 1) - SCALE


def evaluate(req):
    seed = bytes.fromhex(req["data_seed"])
    params = [parse_fixed(p) for p in req["params"]]
    total = 0
    for i, p in enumerate(params):
        d = p - centre(seed, i)
        total += d * d // SCALE  # d*d >= 0: floor equals truncation
    return format_fixed(total)


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        rid = None
        try:
            req = json.loads(line)
            rid = req.get("id")
            if req.get("method") != "evaluate":
                raise ValueError("unknown method %r" % req.get("method"))
            out = {"id": rid, "metric": evaluate(req)}
        except Exception as e:  # report, never crash: the node restarts crashed plugins anyway
            out = {"id": rid if isinstance(rid, int) else 0, "error": str(e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
