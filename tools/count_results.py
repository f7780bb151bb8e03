#!/usr/bin/env python3
"""Counts the test cases one `bazel test` invocation ran, from its build events.

Usage: count_results.py LABEL BEP_JSON_FILE
Prints "LABEL PASSED FAILED SKIPPED" on stdout and the reason for every failure
that is not a failed test case on stderr.

Only what the invocation itself reports is counted (its TestResult events and the
test.xml files they point to), never whatever happens to lie in bazel-testlogs:
the sanitizer run writes to the same directory as the default run, and deleted
targets leave their logs behind. Beyond the failed cases in the XML:
  - a test attempt whose status is not PASSED (non-zero exit after a clean XML,
    a crash, a timeout) with no failed case in its XML counts one failure;
  - a target that did not build, and a test target that did not run, count one
    failure each;
  - an invocation that left no complete event file, or that failed with nothing
    above to show for it, counts one failure.
A case that was skipped and also failed (in TearDown, say) is a failure.
"""
import json
import sys
import urllib.parse
import xml.etree.ElementTree as ET


class Target:
    def __init__(self):
        self.is_test = False
        self.build_failure = None  # why it did not build, when it did not
        self.summary_status = None
        # (run, shard) -> the last attempt's (attempt, status, test.xml path)
        self.attempts = {}


def uri_path(uri):
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "file":
        return None
    return urllib.parse.unquote(parsed.path)


def read_events(path):
    """Yields the events of a BEP JSON file; a truncated last line is dropped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                return


def count_cases(xml_path):
    """(passed, failed, skipped) of one test.xml, or None when it is unreadable."""
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError):
        return None
    passed = failed = skipped = 0
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif (case.find("skipped") is not None or case.get("status") == "notrun" or
              case.get("result") in ("skipped", "suppressed")):
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def count(bep_path, report):
    """Returns (passed, failed, skipped) for one invocation; `report` gets reasons."""
    targets = {}
    invocation_failures = []
    finished = None

    def target(label):
        return targets.setdefault(label, Target())

    try:
        events = list(read_events(bep_path))
    except OSError as e:
        report(f"no build events: {e}")
        return 0, 1, 0

    for event in events:
        event_id = event.get("id", {})
        if "targetConfigured" in event_id:
            t = target(event_id["targetConfigured"]["label"])
            kind = event.get("configured", {}).get("targetKind", "")
            t.is_test = kind.endswith("_test rule")
            if "aborted" in event:
                t.build_failure = event["aborted"].get("description") or event["aborted"].get(
                    "reason", "aborted")
        elif "targetCompleted" in event_id:
            t = target(event_id["targetCompleted"]["label"])
            if "aborted" in event:
                t.build_failure = event["aborted"].get("description") or event["aborted"].get(
                    "reason", "aborted")
            elif not event.get("completed", {}).get("success", False):
                t.build_failure = "did not build"
        elif "testResult" in event_id:
            key = event_id["testResult"]
            t = target(key["label"])
            t.is_test = True
            result = event.get("testResult", {})
            xml = None
            for output in result.get("testActionOutput", []):
                if output.get("name") == "test.xml":
                    xml = uri_path(output.get("uri", ""))
            run_shard = (key.get("run", 1), key.get("shard", 1))
            attempt = key.get("attempt", 1)
            previous = t.attempts.get(run_shard)
            if previous is None or previous[0] <= attempt:
                t.attempts[run_shard] = (attempt, result.get("status", "NO_STATUS"), xml)
        elif "testSummary" in event_id:
            t = target(event_id["testSummary"]["label"])
            t.is_test = True
            t.summary_status = event.get("testSummary", {}).get("overallStatus", "NO_STATUS")
        elif "buildFinished" in event_id:
            finished = event.get("finished", {})
        elif "aborted" in event and "pattern" in event_id:
            invocation_failures.append(
                "pattern " + " ".join(event_id["pattern"].get("pattern", [])) + ": " +
                (event["aborted"].get("description") or event["aborted"].get("reason", "aborted")))

    passed = failed = skipped = 0
    for label in sorted(targets):
        t = targets[label]
        if t.attempts:
            for (run, shard), (attempt, status, xml) in sorted(t.attempts.items()):
                where = label if len(t.attempts) == 1 else f"{label} (run {run}, shard {shard})"
                cases = count_cases(xml) if xml else None
                if cases is None:
                    failed += 1
                    report(f"{where}: {status}, no readable test.xml")
                    continue
                p, f, s = cases
                if status != "PASSED" and f == 0:
                    f = 1
                    report(f"{where}: {status} without a failed case in its test.xml")
                elif status == "PASSED" and p + f + s == 0:
                    f = 1
                    report(f"{where}: its test.xml has no test case")
                passed += p
                failed += f
                skipped += s
        elif t.is_test:
            failed += 1
            reason = t.build_failure or f"did not run ({t.summary_status or 'no test result'})"
            report(f"{label}: {reason}")
        elif t.build_failure is not None:
            failed += 1
            report(f"{label}: {t.build_failure}")

    for reason in invocation_failures:
        failed += 1
        report(reason)
    if finished is None:
        failed += 1
        report("the build event file has no end (bazel was interrupted or did not start)")
    else:
        exit_code = finished.get("exitCode", {})
        if exit_code.get("code", 0) != 0 and failed == 0:
            failed += 1
            report(f"bazel exited with {exit_code.get('name', '?')} ({exit_code.get('code')})")
    return passed, failed, skipped


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    label, bep_path = sys.argv[1], sys.argv[2]
    passed, failed, skipped = count(bep_path, lambda msg: print(f"{label}: {msg}", file=sys.stderr))
    print(f"{label} {passed} {failed} {skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
