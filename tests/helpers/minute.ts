/** Waits until the current minute has at least 20 s left, so a test's writes share one
 *  fixed rate-limit window (the limits count per calendar minute). Asserts nothing
 *  about time. */
export async function earlyInMinute(): Promise<void> {
  const left = 60 - new Date().getUTCSeconds();
  if (left < 20) await new Promise((r) => setTimeout(r, left * 1000 + 200));
}
