#!/usr/bin/env bash
# Turns iscsi-test-cu's CUnit XML files into "Suite.Test passed|FAILED" lines.
#   scripts/conformance-results.sh SCSI.xml iSCSI.xml
set -euo pipefail
for file in "$@"; do
    [[ -f "$file" ]] || { echo "missing results: $file" >&2; exit 1; }
    awk '
        /<CUNIT_RUN_SUITE_SUCCESS>|<CUNIT_RUN_SUITE_FAILURE>/ { in_suite = 1 }
        /<SUITE_NAME>/ && in_suite { gsub(/.*<SUITE_NAME> *| *<\/SUITE_NAME>.*/, ""); suite = $0; in_suite = 0 }
        /<CUNIT_RUN_TEST_SUCCESS>/ { state = "passed" }
        /<CUNIT_RUN_TEST_FAILURE>/ { state = "FAILED" }
        /<TEST_NAME>/ && state != "" {
            gsub(/.*<TEST_NAME> *| *<\/TEST_NAME>.*/, "")
            key = suite "." $0
            if (!(key in seen) || state == "FAILED") { seen[key] = state }
            state = ""
        }
        END { for (key in seen) print key, seen[key] }
    ' "$file"
done | sort
