#!/usr/bin/env python3
"""Validate spanprint NDJSON output against the record schemas in deploy/schema/.

Usage: validate_schema.py [--schema-dir DIR] [--check-seq] [--require-stats] FILE...

Every line of every FILE ('-' for stdin) must be a JSON object whose "type" names a schema
(the "const" of the schema's properties.type: flow, fingerprint, stats) and must validate
against it (JSON Schema draft 2020-12, python3-jsonschema >= 4). The schemas themselves are
checked against the meta-schema first.

--check-seq      within each file, "seq" must increase strictly from record to record
--require-stats  each file must end with exactly one "stats" record (the sensor's last line)
--coverage       also list, per record type, the documented keys no record in the files had
                 (information only: shows what the test captures do not exercise)

Prints one line per error (file:line: type: at <path>: message) and a summary per file;
exits 0 when everything validates, 1 on any error, 2 on usage or schema problems.
"""
import argparse
import json
import os
import sys

try:
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError:  # pragma: no cover - depends on the host
    sys.stderr.write("validate_schema: python3-jsonschema (>= 4, draft 2020-12) is not installed\n")
    sys.exit(2)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_ERRORS_PER_FILE = 50


class SchemaProblem(Exception):
    pass


def load_schemas(schema_dir):
    """Returns {record type: validator} for every *.schema.json in schema_dir."""
    validators = {}
    names = sorted(n for n in os.listdir(schema_dir) if n.endswith(".schema.json"))
    if not names:
        raise SchemaProblem(f"no *.schema.json in {schema_dir}")
    for name in names:
        path = os.path.join(schema_dir, name)
        with open(path, encoding="utf-8") as f:
            try:
                schema = json.load(f)
            except json.JSONDecodeError as e:
                raise SchemaProblem(f"{path}: not JSON: {e}")
        if schema.get("$schema") != "https://json-schema.org/draft/2020-12/schema":
            raise SchemaProblem(f"{path}: $schema is not draft 2020-12")
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError as e:
            raise SchemaProblem(f"{path}: invalid schema: {e.message}")
        rtype = schema.get("properties", {}).get("type", {}).get("const")
        if not isinstance(rtype, str):
            raise SchemaProblem(f"{path}: properties.type has no string const")
        if rtype in validators:
            raise SchemaProblem(f"{path}: second schema for type {rtype!r}")
        validators[rtype] = Draft202012Validator(schema)
    return validators


def schema_paths(schema, node, prefix, out):
    """Collects the key paths a schema documents ("tls.cert.san[]"), following local $refs."""
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return
        target = schema
        for part in ref[2:].split("/"):
            target = target[part]
        node = {k: v for k, v in node.items() if k != "$ref"} | target
    for key, sub in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        out.add(path)
        schema_paths(schema, sub, path, out)
    if isinstance(node.get("items"), dict):
        schema_paths(schema, node["items"], prefix + "[]", out)


def record_paths(obj, prefix, out):
    if isinstance(obj, dict):
        for key, sub in obj.items():
            path = f"{prefix}.{key}" if prefix else key
            out.add(path)
            record_paths(sub, path, out)
    elif isinstance(obj, list):
        for sub in obj:
            record_paths(sub, prefix + "[]", out)


def json_path(err):
    p = "$"
    for part in err.absolute_path:
        p += f"[{part}]" if isinstance(part, int) else f".{part}"
    return p


def describe(err):
    """The most useful message of an error (for anyOf/oneOf, its best sub-error)."""
    if err.context:
        err = jsonschema.exceptions.best_match(err.context)
    return f"at {json_path(err)}: {err.message}"


def check_file(path, validators, opts, counts, seen):
    errors = 0
    types = []
    last_seq = None

    def fail(lineno, msg):
        nonlocal errors
        errors += 1
        if errors <= MAX_ERRORS_PER_FILE:
            print(f"{path}:{lineno}: {msg}")

    f = sys.stdin if path == "-" else open(path, encoding="utf-8", errors="strict")
    with f:
        lineno = 0
        for line in f:
            lineno += 1
            if not line.endswith("\n"):
                fail(lineno, "last line has no newline (NDJSON lines end with \\n)")
            text = line.rstrip("\n")
            if not text.strip():
                fail(lineno, "empty line")
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as e:
                fail(lineno, f"not JSON: {e}")
                continue
            if not isinstance(rec, dict):
                fail(lineno, "not a JSON object")
                continue
            rtype = rec.get("type")
            types.append(rtype)
            v = validators.get(rtype) if isinstance(rtype, str) else None
            if v is None:
                fail(lineno, f"unknown record type {rtype!r} (schemas: {', '.join(sorted(validators))})")
                continue
            counts[rtype] = counts.get(rtype, 0) + 1
            record_paths(rec, "", seen.setdefault(rtype, set()))
            errs = sorted(v.iter_errors(rec), key=lambda e: list(e.absolute_path))
            for e in errs:
                fail(lineno, f"{rtype}: {describe(e)}")
            if opts.check_seq and isinstance(rec.get("seq"), int):
                if last_seq is not None and rec["seq"] <= last_seq:
                    fail(lineno, f"seq {rec['seq']} does not follow {last_seq}")
                last_seq = rec["seq"]
        if opts.require_stats:
            if not types or types[-1] != "stats":
                fail(lineno, "the last record is not a stats record")
            elif types.count("stats") != 1:
                fail(lineno, f"{types.count('stats')} stats records (want exactly 1, the last)")
    if errors > MAX_ERRORS_PER_FILE:
        print(f"{path}: ... {errors - MAX_ERRORS_PER_FILE} more errors")
    return lineno, errors


def main():
    ap = argparse.ArgumentParser(description="Validate spanprint NDJSON records against deploy/schema/*.schema.json")
    ap.add_argument("files", nargs="+", metavar="FILE")
    ap.add_argument("--schema-dir", default=os.path.join(ROOT, "deploy", "schema"))
    ap.add_argument("--check-seq", action="store_true", help="seq must increase strictly within a file")
    ap.add_argument("--require-stats", action="store_true", help="each file must end with its one stats record")
    ap.add_argument("--coverage", action="store_true", help="list documented keys that no record had")
    opts = ap.parse_args()

    try:
        validators = load_schemas(opts.schema_dir)
    except (SchemaProblem, OSError) as e:
        sys.stderr.write(f"validate_schema: {e}\n")
        return 2
    total_err = 0
    seen = {}
    for path in opts.files:
        counts = {}
        try:
            n, err = check_file(path, validators, opts, counts, seen)
        except (OSError, UnicodeDecodeError) as e:
            print(f"{path}: {e}")
            total_err += 1
            continue
        total_err += err
        summary = ", ".join(f"{counts[t]} {t}" for t in sorted(counts)) or "no records"
        print(f"{path}: {n} lines ({summary}): {'ok' if err == 0 else f'{err} errors'}")
    if opts.coverage:
        for rtype in sorted(validators):
            documented = set()
            schema = validators[rtype].schema
            schema_paths(schema, schema, "", documented)
            missing = sorted(documented - seen.get(rtype, set()))
            print(f"coverage: {rtype}: {len(documented) - len(missing)} of {len(documented)} documented keys seen"
                  + (f"; never seen: {', '.join(missing)}" if missing else ""))
    return 1 if total_err else 0


if __name__ == "__main__":
    sys.exit(main())
