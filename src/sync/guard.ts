/**
 * Other domains' optional contributions to /sync (push counts, e2ee keys)
 * may not be written yet: their stubs throw Error('unimplemented'). Only
 * that case falls back; real failures still surface.
 */
export async function orDefault<T>(p: Promise<T>, fallback: T): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (isUnimplemented(err)) return fallback;
    throw err;
  }
}

export function isUnimplemented(err: unknown): boolean {
  return err instanceof Error && err.message === 'unimplemented';
}
