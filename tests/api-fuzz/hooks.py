"""Schemathesis hooks for DOIN's REST API (see docs/reliability.md#api-fuzzing-from-the-openapi-document).

The OpenAPI document names the formats a JSON Schema pattern cannot state; this file tells the
generator how to make values of them:

- `doin-address`: a bech32m address (its checksum is what a pattern cannot state). Half are
  the running network's known accounts (the public keys of the key files in
  `$API_FUZZ_KEYS_DIR`), the rest random valid keys (points of the curve) under the network's
  prefix (`$API_FUZZ_HRP`, default `ddoin`).
- `doin-transaction`, `doin-main-message`, `doin-channel-message`, `bolt11`: signed or encoded
  content. A generator cannot sign, so these are random bytes (hex) or random invoice-shaped
  text: they exercise the decoders through HTTP, and the node must refuse them with a problem
  naming the content (`schemathesis.toml` lists the refusals these operations expect).

One check is added to the built-in ones: every refusal (4xx) is a problem document
(`application/problem+json`) whose `status` is the response's and whose `type` is one of ours.
"""

import json
import os
from pathlib import Path

import schemathesis
from hypothesis import strategies as st

# BIP-350 (bech32m), encoding only.
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32M_CONST = 0x2BC830A3


def _polymod(values):
    generator = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= generator[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp):
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _to_5bit(data):
    acc, bits, out = 0, 0, []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    return out


def bech32m_address(hrp, key):
    data = _to_5bit(key)
    polymod = _polymod(_hrp_expand(hrp) + data + [0] * 6) ^ _BECH32M_CONST
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in data + checksum)


def _known_keys():
    folder = os.environ.get("API_FUZZ_KEYS_DIR")
    if not folder:
        return []
    keys = []
    for path in sorted(Path(folder).glob("*.json")):
        public_key = json.loads(path.read_text()).get("public_key")
        if public_key:
            keys.append(bytes.fromhex(public_key))
    return keys


# secp256k1's field prime: an x-only key is valid when x < P and x³ + 7 is a square mod P.
_P = 2**256 - 2**32 - 977


def is_valid_x_only_key(key):
    x = int.from_bytes(key, "big")
    return x < _P and pow((pow(x, 3, _P) + 7) % _P, (_P - 1) // 2, _P) == 1


_HRP = os.environ.get("API_FUZZ_HRP", "ddoin")
# Keys someone could hold: the node refuses to open a channel to a key nobody can sign for.
_random_addresses = (
    st.binary(min_size=32, max_size=32)
    .filter(is_valid_x_only_key)
    .map(lambda key: bech32m_address(_HRP, key))
)
_known = _known_keys()
_addresses = (
    st.one_of(st.sampled_from([bech32m_address(_HRP, k) for k in _known]), _random_addresses)
    if _known
    else _random_addresses
)
schemathesis.openapi.format("doin-address", _addresses)

_encoded = st.binary(min_size=1, max_size=512).map(bytes.hex)
for name in ("doin-transaction", "doin-main-message", "doin-channel-message"):
    schemathesis.openapi.format(name, _encoded)
# An invoice's shape (`ln` + a prefix + amount, then the bech32 data part) with random data.
schemathesis.openapi.format(
    "bolt11",
    st.builds(
        lambda hrp, data: hrp + "1" + data,
        st.sampled_from(["lnddoin", "lnddoin10u", "lntdoin", "lnbc"]),
        st.text(alphabet=_CHARSET, min_size=10, max_size=300),
    ),
)


@schemathesis.check
def refusals_are_problem_documents(ctx, response, case):
    """Every 4xx but 405 (the router's, for a method a path does not have) is a problem
    document naming one of our problem types, with the response's status."""
    if not 400 <= response.status_code < 500 or response.status_code == 405:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/problem+json"), (
        f"a {response.status_code} answered with content type {content_type!r}"
    )
    problem = json.loads(response.content)
    assert problem.get("status") == response.status_code, f"problem status {problem.get('status')}"
    assert str(problem.get("type", "")).startswith("urn:doin:problem:"), f"problem type {problem.get('type')!r}"
    return None
