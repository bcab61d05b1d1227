// Preloaded (node --import) into a CLI process a test starts: its wall clock runs QE_TEST_CLOCK_OFFSET_MS
// ahead (or behind), so a test can restart a killed run "an hour later" without waiting an hour.
const offset = Number(process.env.QE_TEST_CLOCK_OFFSET_MS ?? 0);
if (offset) {
  const real = Date.now;
  Date.now = () => real() + offset;
}
