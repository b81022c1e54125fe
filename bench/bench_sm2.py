"""SM2 sign and verify per second: dgov's OpenSSL-backed SM2 against the pure-Python ``gmssl``.

Both sign SM2-with-SM3 with the default distinguishing ID (so both compute Z and hash the
message), on the same machine in the same run, in interleaved rounds (see common.best_rates).
Before timing, each side's signature is checked with the other side, so the two really do the
same work. Run: ``.venv/bin/python bench/bench_sm2.py [--seconds 2] [--size 32]``.
"""

from __future__ import annotations

import argparse
import os
import sys

from common import best_rates, table

from dgov.kernel.crypto import SM2PrivateKey, sm2_signature_from_raw, sm2_signature_to_raw

REQUIRED_RATIO = 20.0


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table and return 0 when both ratios reach REQUIRED_RATIO."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement (default 2)")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds per measurement")
    parser.add_argument("--size", type=int, default=32, help="message size in bytes (default 32)")
    args = parser.parse_args(argv)

    from gmssl import sm2 as gm_sm2

    key = SM2PrivateKey.generate()
    x, y = key.public_key().to_point()
    while f"{x:064x}".startswith("04"):  # gmssl strips a leading "04" as if it were the point prefix
        key = SM2PrivateKey.generate()
        x, y = key.public_key().to_point()
    public = key.public_key()
    # gmssl takes the point as 128 hex digits without the 04 prefix.
    peer = gm_sm2.CryptSM2(private_key=f"{key.private_value():064x}", public_key=f"{x:064x}{y:064x}")
    message = os.urandom(args.size)

    ours_sig = key.sign(message)
    peer_sig = peer.sign_with_sm3(message)
    if not peer.verify_with_sm3(sm2_signature_to_raw(ours_sig).hex(), message):
        raise SystemExit("gmssl rejects our signature: the comparison would be meaningless")
    if not public.verify(sm2_signature_from_raw(bytes.fromhex(peer_sig)), message):
        raise SystemExit("we reject gmssl's signature: the comparison would be meaningless")

    sign = best_rates(
        {"dgov": lambda: key.sign(message), "gmssl": lambda: peer.sign_with_sm3(message)},
        args.seconds,
        args.rounds,
    )
    verify = best_rates(
        {
            "dgov": lambda: public.verify(ours_sig, message),
            "gmssl": lambda: peer.verify_with_sm3(peer_sig, message),
        },
        args.seconds,
        args.rounds,
    )
    rows = [
        [op, rates["dgov"], rates["gmssl"], rates["dgov"] / rates["gmssl"]]
        for op, rates in (("sign", sign), ("verify", verify))
    ]
    print(f"SM2-with-SM3, {args.size}-byte message, ID 1234567812345678, best of {args.rounds} rounds")
    print(table(["operation", "dgov ops/s (OpenSSL)", "gmssl ops/s (pure Python)", "ratio ×"], rows))
    worst = min(row[3] for row in rows)
    verdict = "meets" if worst >= REQUIRED_RATIO else "MISSES"
    print(f"lowest ratio {worst:.1f}× {verdict} the required {REQUIRED_RATIO:.0f}×")
    return 0 if worst >= REQUIRED_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
