// Prints one plain closing line, `Tests: N passed, N failed` (+ skipped), after jest's own summary,
// so CI logs end with the result in a runner-independent form.
class SummaryLineReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const line = `Tests: ${results.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`;
    // jest's summary reporter prints after ours: write at exit so this is the last line.
    process.once('exit', () => process.stderr.write(line));
  }
}
module.exports = SummaryLineReporter;
