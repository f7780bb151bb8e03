#!/usr/bin/env python3
"""Reads critest's ginkgo JSON report and prints the result of a run.

usage: critest_report.py REPORT.json SKIPS.txt

Prints every failed spec with the first lines of its failure, every listed skip that critest
did skip, warns about listed skips that match no spec, and ends with exactly one line
    critest: N passed, N failed, N skipped
Exit status 0 when nothing failed, 1 otherwise (also when the report is missing, empty or
holds no spec that ran).
"""
import json
import sys

RAN_OK = {"passed"}
SKIPPED = {"skipped", "pending"}


def spec_text(spec):
    return " ".join(list(spec.get("ContainerHierarchyTexts") or []) + [spec.get("LeafNodeText", "")]).strip()


def read_skips(path):
    skips = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, sep, reason = line.partition(" | ")
            if not sep or not reason.strip():
                sys.exit("critest_report.py: %s: every entry is 'SPEC TEXT | REASON': %r" % (path, line))
            skips.append((name.strip(), reason.strip()))
    return skips


def main():
    report_path, skips_path = sys.argv[1:3]
    skips = read_skips(skips_path)
    try:
        with open(report_path) as f:
            suites = json.load(f)
    except (OSError, ValueError) as e:
        print("critest report unreadable: %s" % e, file=sys.stderr)
        print("critest: 0 passed, 1 failed, 0 skipped")
        return 1

    passed, failed, skipped = 0, [], 0
    skip_reasons = {}
    listed_seen = set()
    for suite in suites:
        for spec in suite.get("SpecReports") or []:
            if spec.get("LeafNodeType") != "It":
                # BeforeSuite/AfterSuite and friends: count only when they broke.
                if spec.get("State") not in RAN_OK | SKIPPED:
                    failed.append(spec)
                continue
            text = spec_text(spec)
            state = spec.get("State")
            for name, _ in skips:
                if name == text:
                    listed_seen.add(name)
            if state in RAN_OK:
                passed += 1
            elif state in SKIPPED:
                skipped += 1
                why = ((spec.get("Failure") or {}).get("Message") or "").strip().splitlines()
                why = why[0] if why else "not selected (--ginkgo.skip: benchmarks, critest-skips.txt)"
                skip_reasons[why] = skip_reasons.get(why, 0) + 1
            else:
                failed.append(spec)

    for spec in failed:
        fail = spec.get("Failure") or {}
        loc = fail.get("Location") or {}
        msg = (fail.get("Message") or "").strip().splitlines()
        print("FAILED [%s] %s" % (spec.get("State"), spec_text(spec) or spec.get("LeafNodeType")))
        if loc:
            print("    at %s:%s" % (loc.get("FileName", "?"), loc.get("LineNumber", "?")))
        for line in msg[:6]:
            print("    " + line)
    for why, n in sorted(skip_reasons.items(), key=lambda kv: -kv[1]):
        print("skipped %3d: %s" % (n, why))
    for name, reason in skips:
        if name in listed_seen:
            print("skipped by tests/k8s/critest-skips.txt: %s (%s)" % (name, reason))
        else:
            print("warning: tests/k8s/critest-skips.txt lists a spec critest does not have: %s" % name,
                  file=sys.stderr)

    if passed == 0 and not failed:
        print("critest ran no spec", file=sys.stderr)
        print("critest: 0 passed, 1 failed, %d skipped" % skipped)
        return 1
    print("critest: %d passed, %d failed, %d skipped" % (passed, len(failed), skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
