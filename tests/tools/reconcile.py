#!/usr/bin/env python3
"""Checks that fingerprints and flow records of one spanprint output count the same traffic:
summed over all fingerprint records, up/down packets and bytes equal the flow records'
c2s/s2c packets and bytes. usage: reconcile.py OUTPUT.jsonl  (exit 1 on a difference)"""
import json
import sys

flow = [0, 0, 0, 0]
fp = [0, 0, 0, 0]
n_fp = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["type"] == "flow":
        flow[0] += r["c2s"]["pkts"]
        flow[1] += r["c2s"]["bytes"]
        flow[2] += r["s2c"]["pkts"]
        flow[3] += r["s2c"]["bytes"]
    elif r["type"] == "fingerprint":
        n_fp += 1
        fp[0] += r["up"]["pkts"]
        fp[1] += r["up"]["bytes"]
        fp[2] += r["down"]["pkts"]
        fp[3] += r["down"]["bytes"]
print(f"flows up/down pkts,bytes {flow}; {n_fp} fingerprints {fp}")
sys.exit(0 if flow == fp and n_fp > 0 else 1)
