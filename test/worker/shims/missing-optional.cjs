// An optional dependency that is not installed (mysql2's `cardinal`): fail the way Node does, so the
// caller's try/catch takes its fallback, without the pool logging "Failed to require" for it.
const err = new Error('optional module not installed');
err.code = 'MODULE_NOT_FOUND';
throw err;
