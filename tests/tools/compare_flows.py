#!/usr/bin/env python3
"""Compares the flow (and fingerprint) records of two spanprint outputs, ignoring fields that
depend on when packets were seen (timestamps, durations, sequence numbers, window bounds).

usage: compare_flows.py A.jsonl B.jsonl   -> exit 0 if equal as multisets, else prints diff
"""
import json
import sys

TIME_KEYS = {"start", "end", "duration", "flow_start", "seq", "run", "window", "ttfb", "gaps",
             "sensor"}


def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if k not in TIME_KEYS}
    if isinstance(o, list):
        return [strip(v) for v in o]
    return o


def load(path, types):
    out = []
    for line in open(path):
        r = json.loads(line)
        if r.get("type") in types:
            out.append(json.dumps(strip(r), sort_keys=True))
    return sorted(out)


def main():
    types = {"flow"} if len(sys.argv) < 4 else set(sys.argv[3].split(","))
    a, b = load(sys.argv[1], types), load(sys.argv[2], types)
    if a == b:
        print(f"equal: {len(a)} records")
        return 0
    sa, sb = set(a), set(b)
    for r in sorted(sa - sb)[:10]:
        print("only in A:", r)
    for r in sorted(sb - sa)[:10]:
        print("only in B:", r)
    print(f"different: A has {len(a)} records, B has {len(b)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
