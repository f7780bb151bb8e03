#!/usr/bin/env python3
"""Tests for count_results.py on crafted build event files and test.xml files.

Run directly: python3 tools/count_results_test.py
The last line is "count_results_test PASSED FAILED SKIPPED", as count_results.py
prints it, so tools/run-tests.sh adds it to the suite's total.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import count_results  # noqa: E402

PASSING_XML = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" failures="0" disabled="0" errors="0" name="AllTests">
  <testsuite name="Suite" tests="2" failures="0" disabled="0" skipped="0" errors="0">
    <testcase name="A" status="run" result="completed" classname="Suite" />
    <testcase name="B" status="run" result="completed" classname="Suite" />
  </testsuite>
</testsuites>
"""

ONE_FAILED_XML = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" failures="1" disabled="0" errors="0" name="AllTests">
  <testsuite name="Suite" tests="2" failures="1" disabled="0" skipped="0" errors="0">
    <testcase name="A" status="run" result="completed" classname="Suite" />
    <testcase name="B" status="run" result="completed" classname="Suite">
      <failure message="x.cc:3 Expected equality" type=""><![CDATA[x.cc:3]]></failure>
    </testcase>
  </testsuite>
</testsuites>
"""

# GoogleTest writes both elements for a case that called GTEST_SKIP and then
# failed in TearDown.
SKIPPED_XML = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" failures="1" disabled="1" errors="0" name="AllTests">
  <testsuite name="Suite" tests="4" failures="1" disabled="1" skipped="2" errors="0">
    <testcase name="Ran" status="run" result="completed" classname="Suite" />
    <testcase name="Skipped" status="run" result="skipped" classname="Suite">
      <skipped message="no crun here"><![CDATA[]]></skipped>
    </testcase>
    <testcase name="SkippedThenFailedInTearDown" status="run" result="completed" classname="Suite">
      <skipped message="skip"><![CDATA[]]></skipped>
      <failure message="leak: /run/netns/crid-1" type=""><![CDATA[]]></failure>
    </testcase>
    <testcase name="DISABLED_Off" status="notrun" result="suppressed" classname="Suite" />
  </testsuite>
</testsuites>
"""

# What Bazel writes for a binary that exited before writing its own XML.
BAZEL_SYNTHETIC_XML = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
<testsuite name="//t:crash_test" tests="1" failures="0" errors="1">
<testcase name="//t:crash_test" status="run" duration="1" time="1">
<error message="exited with error code 134"></error></testcase>
</testsuite>
</testsuites>
"""


class CountResultsTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.events = []
        self.reasons = []

    def tearDown(self):
        self.tmp.cleanup()

    def write_xml(self, name, text):
        path = os.path.join(self.dir, name, "test.xml")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def configured(self, label, kind="cc_test rule"):
        self.events.append({
            "id": {"targetConfigured": {"label": label}},
            "configured": {"targetKind": kind},
        })

    def completed(self, label, success=True):
        event = {"id": {"targetCompleted": {"label": label, "configuration": {"id": "c"}}}}
        event["completed"] = {"success": True} if success else {}
        self.events.append(event)

    def result(self, label, status, xml_path, attempt=1, run=1, shard=1):
        outputs = [{"name": "test.log", "uri": "file://" + self.dir + "/test.log"}]
        if xml_path is not None:
            outputs.append({"name": "test.xml", "uri": "file://" + xml_path})
        self.events.append({
            "id": {
                "testResult": {
                    "label": label, "run": run, "shard": shard, "attempt": attempt,
                    "configuration": {"id": "c"}
                }
            },
            "testResult": {"testActionOutput": outputs, "status": status},
        })

    def summary(self, label, status):
        self.events.append({
            "id": {"testSummary": {"label": label, "configuration": {"id": "c"}}},
            "testSummary": {"overallStatus": status, "totalRunCount": 1},
        })

    def passing_test(self, label):
        self.configured(label)
        self.completed(label)
        self.result(label, "PASSED", self.write_xml(label.replace(":", "_")[2:], PASSING_XML))
        self.summary(label, "PASSED")

    def finish(self, code=0, name="SUCCESS"):
        event = {"id": {"buildFinished": {}}, "finished": {"overallSuccess": code == 0}}
        if code:
            event["finished"]["exitCode"] = {"name": name, "code": code}
        else:
            event["finished"]["exitCode"] = {"name": name}
        self.events.append(event)

    def count(self):
        path = os.path.join(self.dir, "bep.json")
        with open(path, "w") as f:
            for event in self.events:
                f.write(json.dumps(event) + "\n")
        return count_results.count(path, self.reasons.append)

    def test_counts_cases_of_targets_that_ran(self):
        self.passing_test("//a:one_test")
        self.passing_test("//a:two_test")
        self.finish()
        self.assertEqual(self.count(), (4, 0, 0))
        self.assertEqual(self.reasons, [])

    def test_stale_test_xml_is_not_counted(self):
        # A deleted target's log and another run's log lie next to this run's.
        self.write_xml("a/deleted_test", ONE_FAILED_XML)
        self.write_xml("a/not_in_this_run_test", PASSING_XML)
        self.passing_test("//a:one_test")
        self.finish()
        self.assertEqual(self.count(), (2, 0, 0))

    def test_target_that_did_not_build_is_a_failure(self):
        self.passing_test("//a:one_test")
        self.configured("//a:broken_test")
        self.completed("//a:broken_test", success=False)
        self.summary("//a:broken_test", "FAILED_TO_BUILD")
        # A stale XML from an earlier build of the same target is not read.
        self.write_xml("a/broken_test", PASSING_XML)
        self.finish(1, "BUILD_FAILURE")
        self.assertEqual(self.count(), (2, 1, 0))
        self.assertTrue(any("//a:broken_test" in r for r in self.reasons), self.reasons)

    def test_library_that_did_not_build_is_a_failure(self):
        self.configured("//a:lib", kind="cc_library rule")
        self.events.append({
            "id": {"targetCompleted": {"label": "//a:lib", "configuration": {"id": "c"}}},
            "aborted": {"reason": "ANALYSIS_FAILURE", "description": "no such package"},
        })
        self.finish(1, "BUILD_FAILURE")
        self.assertEqual(self.count(), (0, 1, 0))
        self.assertIn("//a:lib: no such package", self.reasons)

    def test_test_target_without_result_is_a_failure(self):
        # The build stopped before the test ran (no --keep_going, or interrupted).
        self.configured("//a:never_ran_test")
        self.passing_test("//a:one_test")
        self.finish(1, "BUILD_FAILURE")
        self.assertEqual(self.count(), (2, 1, 0))

    def test_clean_xml_with_non_zero_exit_is_a_failure(self):
        self.configured("//a:leaky_test")
        self.completed("//a:leaky_test")
        self.result("//a:leaky_test", "FAILED", self.write_xml("a/leaky_test", PASSING_XML))
        self.summary("//a:leaky_test", "FAILED")
        self.finish(3, "TESTS_FAILED")
        self.assertEqual(self.count(), (2, 1, 0))
        self.assertTrue(any("FAILED without a failed case" in r for r in self.reasons))

    def test_failed_cases_are_not_counted_twice(self):
        self.configured("//a:fail_test")
        self.completed("//a:fail_test")
        self.result("//a:fail_test", "FAILED", self.write_xml("a/fail_test", ONE_FAILED_XML))
        self.finish(3, "TESTS_FAILED")
        self.assertEqual(self.count(), (1, 1, 0))

    def test_timeout_and_crash_are_failures(self):
        self.configured("//a:slow_test")
        self.completed("//a:slow_test")
        self.result("//a:slow_test", "TIMEOUT", self.write_xml("a/slow_test", BAZEL_SYNTHETIC_XML))
        self.configured("//a:crash_test")
        self.completed("//a:crash_test")
        self.result("//a:crash_test", "FAILED", None)
        self.finish(3, "TESTS_FAILED")
        self.assertEqual(self.count(), (0, 2, 0))

    def test_skipped_then_failed_is_a_failure_and_skips_are_counted(self):
        self.configured("//a:skip_test")
        self.completed("//a:skip_test")
        self.result("//a:skip_test", "FAILED", self.write_xml("a/skip_test", SKIPPED_XML))
        self.finish(3, "TESTS_FAILED")
        self.assertEqual(self.count(), (1, 1, 2))

    def test_only_the_last_attempt_counts(self):
        self.configured("//a:flaky_test")
        self.completed("//a:flaky_test")
        self.result("//a:flaky_test", "FAILED", self.write_xml("a/attempt1", ONE_FAILED_XML), 1)
        self.result("//a:flaky_test", "PASSED", self.write_xml("a/attempt2", PASSING_XML), 2)
        self.finish()
        self.assertEqual(self.count(), (2, 0, 0))

    def test_every_shard_counts(self):
        self.configured("//a:sharded_test")
        self.completed("//a:sharded_test")
        self.result("//a:sharded_test", "PASSED", self.write_xml("a/s1", PASSING_XML), shard=1)
        self.result("//a:sharded_test", "FAILED", self.write_xml("a/s2", ONE_FAILED_XML), shard=2)
        self.finish(3, "TESTS_FAILED")
        self.assertEqual(self.count(), (3, 1, 0))

    def test_truncated_event_file_is_a_failure(self):
        self.passing_test("//a:one_test")
        self.assertEqual(self.count(), (2, 1, 0))
        self.assertTrue(any("no end" in r for r in self.reasons))

    def test_missing_event_file_is_a_failure(self):
        result = count_results.count(os.path.join(self.dir, "absent.json"), self.reasons.append)
        self.assertEqual(result, (0, 1, 0))

    def test_failed_invocation_with_nothing_else_is_a_failure(self):
        self.finish(2, "COMMAND_LINE_ERROR")
        self.assertEqual(self.count(), (0, 1, 0))

    def test_test_xml_without_cases_is_a_failure(self):
        self.configured("//a:empty_test")
        self.completed("//a:empty_test")
        self.result("//a:empty_test", "PASSED",
                    self.write_xml("a/empty_test", "<testsuites></testsuites>"))
        self.finish()
        self.assertEqual(self.count(), (0, 1, 0))

    def test_script_prints_one_line(self):
        self.passing_test("//a:one_test")
        self.finish()
        path = os.path.join(self.dir, "bep.json")
        with open(path, "w") as f:
            for event in self.events:
                f.write(json.dumps(event) + "\n")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "count_results.py")
        run = subprocess.run([sys.executable, script, "default", path], capture_output=True,
                             text=True, check=True)
        self.assertEqual(run.stdout, "default 2 0 0\n")


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    print(f"count_results_test {result.testsRun - failed - skipped} {failed} {skipped}")
    sys.exit(0 if result.wasSuccessful() else 1)
