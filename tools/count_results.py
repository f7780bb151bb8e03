#!/usr/bin/env python3
"""Counts passed and failed test cases in Bazel's test logs.

Usage: count_results.py LABEL TESTLOGS_DIR
Prints "LABEL PASSED FAILED". Reads each test target's test.xml (GoogleTest
format); a target whose log says it failed but whose XML shows no failed case
(crash, timeout, build error) counts one failure.
"""
import os
import sys
import xml.etree.ElementTree as ET


def main():
    label, root = sys.argv[1], sys.argv[2]
    passed = failed = 0
    for dirpath, _, files in os.walk(root, followlinks=True):
        if "test.xml" not in files:
            continue
        path = os.path.join(dirpath, "test.xml")
        try:
            tree = ET.parse(path)
        except ET.ParseError:
            failed += 1
            continue
        cases = tree.getroot().iter("testcase")
        target_failed = 0
        target_cases = 0
        for case in cases:
            if case.get("status") == "notrun" or case.find("skipped") is not None:
                continue
            target_cases += 1
            if case.find("failure") is not None or case.find("error") is not None:
                target_failed += 1
        log = os.path.join(dirpath, "test.log")
        crashed = False
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                text = f.read()
            # Bazel writes a synthetic XML for tests that died before writing their own.
            crashed = target_cases == 0 or "exited with error code" in text and target_failed == 0
        if crashed and target_failed == 0:
            target_failed = 1
            print(f"{label}: {os.path.relpath(dirpath, root)} failed without a failed case",
                  file=sys.stderr)
        passed += target_cases - min(target_failed, target_cases)
        failed += target_failed
    print(f"{label} {passed} {failed}")


if __name__ == "__main__":
    main()
