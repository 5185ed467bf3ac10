// Bun and Deno run Node code with their own node:net/node:http; some of their servers have no
// kernel file descriptor for the addon to read (docs/runtimes.md).

/** 'Bun 1.4.5' or 'Deno 2.9.6' when this is not Node, else null. */
export function otherRuntime(): string | null {
  const v = process.versions as Record<string, string | undefined>;
  if (v.bun !== undefined) return `Bun ${v.bun}`;
  if (v.deno !== undefined) return `Deno ${v.deno}`;
  return null;
}
