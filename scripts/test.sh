#!/usr/bin/env bash
# The whole suite: build the executables (integration and e2e tests exec dist/exe/*, or dist/bin/* with
# FLANNEL_TEST_BUILD=node), then every vitest project (unit, integration, e2e). Ends with one plain
# "N passed, N failed, N skipped" line.
set -uo pipefail
cd "$(dirname "$0")/.."
node scripts/build.mjs || exit 1
report=$(mktemp /tmp/flannel-ts-vitest.XXXXXX.json)
trap 'rm -f "$report"' EXIT
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
rc=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  const suites = r.numFailedTestSuites ? `, ${r.numFailedTestSuites} failed suites` : "";
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped${suites}`);
  // every test passed but vitest failed: the run itself did (the sandbox guard, test/helpers/sandbox-guard.ts)
  if (process.argv[2] !== "0" && !r.numFailedTests && !r.numFailedTestSuites) {
    console.log(`run failed (vitest exit ${process.argv[2]}) although no test did: see "sandbox guard" or "error during close" above`);
  }
' "$report" "$rc" 2>/dev/null || echo "tests: no report (vitest exit $rc)"
exit $rc
