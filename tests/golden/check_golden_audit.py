#!/usr/bin/python3
"""Independent check of the golden audit vectors (fixtures/audit/golden).

The vectors are written by the TypeScript code they pin (tests/helpers/golden_audit.ts), so a
check in TypeScript could agree with a bug. This one shares nothing with it: its own RFC 8785
canonical JSON (key order by UTF-16 code units, ECMAScript number and string forms), SHA-256
from hashlib and Ed25519 from python3-cryptography (Debian package; OpenSSL underneath). Per
DESIGN.md "Audit rows":

  hash(row)  = sha256("ostk/audit-row/v1\\n" + canonical JSON of the row without sig)
  prev_hash  = the previous row's hash (64 zeros first); seq counts from 0
  row.sig    = Ed25519 over the 32 raw hash bytes
  head.sig   = Ed25519 over sha256("ostk/audit-head/v1\\n" + canonical {seq, hash, ts})

It also checks expected.json (the canonical strings and hashes the TypeScript test compares
against), that identity.key is the key identity.pub names, and, Ed25519 being deterministic,
that signing each hash with identity.key gives exactly the stored signature.

Usage:
  check_golden_audit.py [DIR]              check the vectors (exit 0 all good, 1 any difference)
  check_golden_audit.py --self-test [DIR]  flip each byte of each vector file in a temp copy,
                                           one at a time; exit 1 unless every flip is caught
"""

import base64
import hashlib
import json
import math
from decimal import Decimal
import os
import shutil
import sys
import tempfile

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ROW_DOMAIN = b"ostk/audit-row/v1\n"
HEAD_DOMAIN = b"ostk/audit-head/v1\n"
ZERO_HASH = "0" * 64
DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures",
                           "audit", "golden")
# The files the self-test corrupts. identity.key is an input to the vectors, not one of them.
VECTOR_FILES = ["audit.jsonl", "audit.head", "expected.json", "identity.pub"]


class Mismatch(Exception):
    """A vector that differs from what the format says it must be."""


# ---- RFC 8785 (JSON Canonicalization Scheme) ----------------------------------------------

def js_number(value):
    """ECMAScript Number::toString for a finite double (RFC 8785 section 3.2.2.3)."""
    if isinstance(value, int):
        value = float(value)  # JSON numbers are doubles; an int beyond 2^53 rounds like JS
    if not math.isfinite(value):
        raise Mismatch(f"{value} has no JSON form")
    if value == 0:
        return "0"  # -0 too
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that round-trip, as JS does; normalize drops trailing zeros.
    _, digit_tuple, exp = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k, n = len(digits), exp + len(digits)  # value = digits * 10^(n-k)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e > 0 else "-") + \
            str(abs(e))
    return sign + out


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
            "\t": "\\t"}


def js_string(text):
    """JSON.stringify of a string: the short escapes, \\u00xx for other controls, else as is."""
    out = ['"']
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\\u%04x" % ord(ch))  # a lone surrogate (well-formed JSON.stringify)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def utf16_key(text):
    return text.encode("utf-16-be")


def canonical(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return js_number(value)
    if isinstance(value, str):
        return js_string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=utf16_key)
        return "{" + ",".join(js_string(k) + ":" + canonical(value[k]) for k in keys) + "}"
    raise Mismatch(f"unexpected JSON value {value!r}")


# ---- reading the vectors ------------------------------------------------------------------

def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise Mismatch(f"duplicate key(s) {sorted(dup)}")
    return dict(pairs)


def parse_json(text, where):
    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except ValueError as err:
        raise Mismatch(f"{where}: not JSON: {err}") from None


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except UnicodeDecodeError as err:
        raise Mismatch(f"{os.path.basename(path)}: not UTF-8: {err}") from None


def b64(text, size, where):
    """Strict base64: right length and the canonical encoding (no stray bits in the padding)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as err:
        raise Mismatch(f"{where}: bad base64: {err}") from None
    if len(raw) != size or base64.b64encode(raw).decode() != text:
        raise Mismatch(f"{where}: not the canonical base64 of {size} bytes")
    return raw


def sha256_hex(domain, text):
    return hashlib.sha256(domain + text.encode("utf-8")).hexdigest()


def verify(public, sig, message, where):
    try:
        public.verify(sig, message)
    except InvalidSignature:
        raise Mismatch(f"{where}: Ed25519 signature does not verify") from None


# ---- the check ----------------------------------------------------------------------------

def check(directory):
    """Raise Mismatch at the first difference; return a one-line summary when all agree."""
    def path(name):
        return os.path.join(directory, name)

    pub_words = read_text(path("identity.pub")).rstrip("\n").split(" ")
    if len(pub_words) < 2 or pub_words[0] != "ed25519":
        raise Mismatch("identity.pub: expected 'ed25519 <base64 key> [comment]'")
    public_raw = b64(pub_words[1], 32, "identity.pub key")
    public = Ed25519PublicKey.from_public_bytes(public_raw)

    with open(path("identity.key"), "rb") as f:
        private = serialization.load_pem_private_key(f.read(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise Mismatch("identity.key: not an Ed25519 private key")
    derived = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)
    if derived != public_raw:
        raise Mismatch("identity.key is not the key identity.pub names")

    text = read_text(path("audit.jsonl"))
    if not text.endswith("\n"):
        raise Mismatch("audit.jsonl: the last row is not ended by a newline")
    lines = text[:-1].split("\n")
    expected = parse_json(read_text(path("expected.json")), "expected.json")
    if not isinstance(expected, dict) or set(expected) != {"hashes", "canonical"}:
        raise Mismatch("expected.json: expected exactly the keys 'hashes' and 'canonical'")
    if not (len(expected["hashes"]) == len(expected["canonical"]) == len(lines)):
        raise Mismatch(f"expected.json lists {len(expected['hashes'])} hashes and "
                       f"{len(expected['canonical'])} canonical rows; audit.jsonl has "
                       f"{len(lines)} rows")

    prev = ZERO_HASH
    last = None
    for i, line in enumerate(lines):
        where = f"audit.jsonl line {i + 1}"
        row = parse_json(line, where)
        if not isinstance(row, dict) or "sig" not in row:
            raise Mismatch(f"{where}: expected an object with a sig")
        for field, kind in (("seq", int), ("ts", str), ("event", str), ("actor", str),
                            ("prev_hash", str), ("sig", str)):
            if not isinstance(row.get(field), kind) or isinstance(row.get(field), bool):
                raise Mismatch(f"{where}: field {field!r} missing or not a {kind.__name__}")
        if row["seq"] != i:
            raise Mismatch(f"{where}: seq {row['seq']}, expected {i}")
        if row["prev_hash"] != prev:
            raise Mismatch(f"{where}: prev_hash {row['prev_hash']}, expected {prev}")
        unsigned = {k: v for k, v in row.items() if k != "sig"}
        text_c = canonical(unsigned)
        if text_c != expected["canonical"][i]:
            raise Mismatch(f"{where}: canonical JSON differs from expected.json:\n"
                           f"  computed {text_c}\n  expected {expected['canonical'][i]}")
        digest = sha256_hex(ROW_DOMAIN, text_c)
        if digest != expected["hashes"][i]:
            raise Mismatch(f"{where}: hash {digest}, expected.json says {expected['hashes'][i]}")
        sig = b64(row["sig"], 64, f"{where} sig")
        verify(public, sig, bytes.fromhex(digest), where)
        if private.sign(bytes.fromhex(digest)) != sig:
            raise Mismatch(f"{where}: identity.key signs this hash to a different signature")
        prev = digest
        last = row

    head = parse_json(read_text(path("audit.head")), "audit.head")
    if not isinstance(head, dict) or set(head) != {"seq", "hash", "ts", "sig"}:
        raise Mismatch("audit.head: expected exactly the keys seq, hash, ts, sig")
    if last is None or head["seq"] != last["seq"] or head["hash"] != prev:
        raise Mismatch(f"audit.head names seq {head['seq']} hash {head['hash']}; the log ends "
                       f"at seq {last and last['seq']} hash {prev}")
    if not isinstance(head["ts"], str) or not isinstance(head["sig"], str):
        raise Mismatch("audit.head: ts and sig must be strings")
    head_text = canonical({"seq": head["seq"], "hash": head["hash"], "ts": head["ts"]})
    head_digest = hashlib.sha256(HEAD_DOMAIN + head_text.encode("utf-8")).digest()
    head_sig = b64(head["sig"], 64, "audit.head sig")
    verify(public, head_sig, head_digest, "audit.head")
    if private.sign(head_digest) != head_sig:
        raise Mismatch("audit.head: identity.key signs the head to a different signature")
    return f"{len(lines)} rows and the head agree (canonical JSON, hashes, chain, signatures)"


def canonical_self_check():
    """RFC 8785 appendix B number cases and the key-order example, so the checker is checked."""
    numbers = {
        0.0: "0", -0.0: "0", 5e-324: "5e-324", 1.7976931348623157e308: "1.7976931348623157e+308",
        9007199254740992.0: "9007199254740992", 1e21: "1e+21", 1e20: "100000000000000000000",
        999999999999999900000.0: "999999999999999900000", 0.000001: "0.000001",
        0.0000001: "1e-7", 333333333.3333332: "333333333.3333332", 1e23: "1e+23",
        -1e-7: "-1e-7", 295147905179352830000.0: "295147905179352830000", 2.5: "2.5",
    }
    for value, want in numbers.items():
        if js_number(value) != want:
            raise Mismatch(f"js_number({value!r}) = {js_number(value)}, RFC 8785 says {want}")
    sample = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With "
              "Dagesh", "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control",
              "\u00f6": "Latin Small Letter O With Diaeresis"}
    order = [k for k in sorted(sample, key=utf16_key)]
    want = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    if order != want:
        raise Mismatch(f"key order {order!r}, RFC 8785 section 3.2.3 says {want!r}")


def self_test(directory):
    """Every single-byte corruption of a vector file must be caught; the clean copy must pass."""
    with tempfile.TemporaryDirectory(prefix="golden-self-test-") as tmp:
        copy = os.path.join(tmp, "golden")
        shutil.copytree(directory, copy)
        check(copy)  # the clean copy passes, or the flips below prove nothing
        caught = total = 0
        missed = []
        for name in VECTOR_FILES:
            target = os.path.join(copy, name)
            with open(target, "rb") as f:
                original = f.read()
            positions = range(len(original))
            if name == "identity.pub":  # only the key; the trailing comment is free text
                start = original.index(b" ") + 1
                positions = range(start, original.index(b" ", start))
            for pos in positions:
                for mask in (0x01,):
                    corrupt = bytearray(original)
                    corrupt[pos] ^= mask
                    with open(target, "wb") as f:
                        f.write(corrupt)
                    total += 1
                    try:
                        check(copy)
                        missed.append(f"{name} byte {pos} ^ 0x{mask:02x}")
                    except Mismatch:
                        caught += 1
            with open(target, "wb") as f:
                f.write(original)
        if missed:
            print(f"golden audit self-test: FAILED: {len(missed)} of {total} corruptions "
                  f"passed the check: {', '.join(missed[:10])}")
            return 1
        print(f"golden audit self-test: ok: all {total} single-byte corruptions of "
              f"{', '.join(VECTOR_FILES)} were caught")
        return 0


def main(argv):
    args = [a for a in argv if a != "--self-test"]
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print(__doc__.strip().split("\n\n")[-1], file=sys.stderr)
        return 2
    directory = args[0] if args else os.path.normpath(DEFAULT_DIR)
    try:
        canonical_self_check()
        if "--self-test" in argv:
            return self_test(directory)
        print(f"golden audit check: ok: {check(directory)} in {directory}")
        return 0
    except Mismatch as err:
        print(f"golden audit check: FAILED: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"golden audit check: cannot read the vectors: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
