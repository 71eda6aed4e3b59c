// The browser scripts' checks: each named check runs, and its outcome (what it returned, or
// its error) and time are recorded in `checks`, which the script prints as its result.
export const checks = {};

/** Runs `fn` as the check `name`; a later check may rely on an earlier one having passed. */
export async function check(name, fn) {
  const started = Date.now();
  try {
    checks[name] = { ok: true, ...(await fn()), ms: Date.now() - started };
  } catch (e) {
    checks[name] = { ok: false, error: String(e && e.message ? e.message : e), ms: Date.now() - started };
  }
}

/** Prints the result line ({"ok", "checks"}) and exits: 0 when every check passed. With
 * `pageErrors`, the page's uncaught errors are the check `page_errors`. */
export function finish(pageErrors = null) {
  if (pageErrors) checks.page_errors = { ok: pageErrors.length === 0, errors: pageErrors };
  const ok = Object.values(checks).every((c) => c.ok);
  console.log(JSON.stringify({ ok, checks }));
  process.exit(ok ? 0 : 1);
}
