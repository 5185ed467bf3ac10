// Prints the one line CI reads: "N passed, M failed[, K skipped]".
'use strict';

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    let line = `${results.numPassedTests} passed, ${failed} failed`;
    if (results.numPendingTests + results.numTodoTests > 0) {
      line += `, ${results.numPendingTests + results.numTodoTests} skipped`;
    }
    process.stdout.write(`\n${line}\n`);
    // .ci/run prints it again after jest's own summary, so that it is the closing line.
    if (process.env.NODE_TOA_SUMMARY_FILE) {
      require('node:fs').writeFileSync(process.env.NODE_TOA_SUMMARY_FILE, `${line}\n`);
    }
  }
}

module.exports = SummaryReporter;
