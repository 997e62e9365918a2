/**
 * Waiting in tests: poll a predicate until it holds or the deadline passes. Never a bare sleep.
 */
export async function waitFor<T>(predicate: () => T | Promise<T>, deadlineMs = 5000, what = 'condition'): Promise<NonNullable<T>> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await predicate();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
