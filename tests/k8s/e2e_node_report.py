#!/usr/bin/env python3
"""Summarises ginkgo JSON reports of tests/k8s/e2e_node.sh.

    e2e_node_report.py --summary RUNTIME report.json
        prints the failed specs and one line "e2e-node RUNTIME: N passed, N failed, N skipped";
        exits 1 when a spec failed or nothing ran.
    e2e_node_report.py --table crid.json containerd.json
        prints a Markdown table, one row per spec that ran on either runtime: the spec, its
        result on crid and on containerd, and for a skip its reason.

Specs that the focus and skip expressions leave out are not counted; a spec that skips itself
(e2eskipper: "this host has no AppArmor", ...) counts as skipped, with its reason.
"""
import json
import re
import sys


def specs(path):
    """Yields (name, state, reason) for every It of the report that was selected to run."""
    with open(path) as f:
        suites = json.load(f)
    for suite in suites:
        for spec in suite.get("SpecReports") or []:
            kind = spec.get("LeafNodeType", "")
            state = spec.get("State", "")
            failure = spec.get("Failure") or {}
            message = (failure.get("Message") or "").strip()
            if kind != "It":
                if state not in ("passed", "skipped"):
                    name = kind + " " + spec.get("LeafNodeLocation", {}).get("FileName", "")
                    yield name, "failed", first_line(message)
                continue
            if state == "skipped" and not message:
                continue  # left out by --focus/--skip: never selected
            name = " ".join(spec.get("ContainerHierarchyTexts") or []) + " " + spec.get("LeafNodeText", "")
            if state in ("failed", "panicked", "timedout", "aborted", "interrupted"):
                state = "failed"
            yield name.strip(), state, first_line(message)


def first_line(message):
    line = message.splitlines()[0] if message else ""
    return re.sub(r"\s+", " ", line)[:200]


def summary(runtime, path):
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    failed = []
    for name, state, reason in specs(path):
        counts[state if state in counts else "failed"] += 1
        if state not in ("passed", "skipped"):
            failed.append((name, reason))
    for name, reason in sorted(failed):
        print("FAIL: %s: %s" % (name, reason))
    print("e2e-node %s: %d passed, %d failed, %d skipped" % (runtime, counts["passed"], counts["failed"],
                                                             counts["skipped"]))
    return 0 if counts["failed"] == 0 and counts["passed"] > 0 else 1


def table(crid_path, containerd_path):
    crid = {n: (s, r) for n, s, r in specs(crid_path)}
    ctrd = {n: (s, r) for n, s, r in specs(containerd_path)}
    def cell(result):
        return result[0] if result else "not run"
    print("| spec | crid | containerd | skip reason |")
    print("|---|---|---|---|")
    for name in sorted(set(crid) | set(ctrd)):
        a, b = crid.get(name), ctrd.get(name)
        reasons = {r[1] for r in (a, b) if r and r[0] == "skipped" and r[1]}
        print("| %s | %s | %s | %s |" % (name.replace("|", "\\|"), cell(a), cell(b),
                                        "; ".join(sorted(reasons)).replace("|", "\\|")))
    totals = []
    for label, results in (("crid", crid), ("containerd", ctrd)):
        states = [s for s, _ in results.values()]
        totals.append("%s %d passed, %d failed, %d skipped" % (
            label, states.count("passed"), states.count("failed"), states.count("skipped")))
    print()
    print("Totals: " + "; ".join(totals) + ".")
    worse = [n for n in crid if crid[n][0] == "failed" and ctrd.get(n, ("",))[0] == "passed"]
    print("Specs that pass on containerd and fail on crid: %d." % len(worse))
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "--summary":
        return summary(argv[2], argv[3])
    if len(argv) == 4 and argv[1] == "--table":
        return table(argv[2], argv[3])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
