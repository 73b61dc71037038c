/**
 * Waits for a condition on events outside the test's control (the server's pace, bytes in flight,
 * another process), polling every 20 ms; throws naming `what` after `timeoutMs`. Not for TTLs:
 * those are driven by an injected clock.
 */
export async function until(check: () => boolean | Promise<boolean>, what = 'a condition', timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() >= deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
