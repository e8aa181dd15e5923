"""Verifies captured deliveries with the official Standard Webhooks library.

Usage: verify_standardwebhooks.py CASES.json, where CASES.json is a list of
{"secrets": [...], "headers": {...}, "body": "..."}. Every case must verify with every one of
its secrets (after a rotation, a delivery carries one signature per secret). Exits non-zero
on the first failure.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    checked = 0
    for i, case in enumerate(cases):
        for secret in case["secrets"]:
            try:
                # A delivery may be verified long after it was captured; the library
                # refuses timestamps older than 5 minutes, which these are not.
                Webhook(secret).verify(case["body"], case["headers"])
            except Exception as e:  # noqa: BLE001 - report any refusal
                print(f"case {i}: refused with secret #{case['secrets'].index(secret)}: {e}")
                return 1
            checked += 1
    print(f"standardwebhooks verified {checked} signatures on {len(cases)} deliveries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
