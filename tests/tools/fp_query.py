#!/usr/bin/env python3
"""Small queries over fingerprint records for the shell tests.
  fp_query.py maxdist FILE            max Hamming distance between any two fingerprints
  fp_query.py mindist FILE_A FILE_B   min distance between a fingerprint of A and one of B
  fp_query.py count FILE              number of fingerprint records
  fp_query.py get FILE EXPR           EXPR (python, record as r) of the first fingerprint
"""
import itertools
import json
import sys


def fps(path):
    return [r for r in map(json.loads, open(path)) if r["type"] == "fingerprint"]


def dist(a, b):
    return bin(int(a["simhash"], 16) ^ int(b["simhash"], 16)).count("1")


cmd = sys.argv[1]
if cmd == "maxdist":
    f = fps(sys.argv[2])
    print(max((dist(a, b) for a, b in itertools.combinations(f, 2)), default=0))
elif cmd == "mindist":
    print(min(dist(a, b) for a in fps(sys.argv[2]) for b in fps(sys.argv[3])))
elif cmd == "count":
    print(len(fps(sys.argv[2])))
elif cmd == "get":
    r = fps(sys.argv[2])[0]
    print(eval(sys.argv[3], {"r": r}))
