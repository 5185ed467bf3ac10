// Every relative link of README.md and docs/*.md resolves: the file (or folder) exists in the
// repository, and a #anchor names a heading of the target as GitHub renders it. Reads files only.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { docFiles, headingAnchors, links, ROOT } from '../helpers/docs/markdown';

interface Checked {
  file: string;
  line: number;
  target: string;
}

function relativeLinks(): Checked[] {
  return docFiles().flatMap((file) =>
    links(fs.readFileSync(path.join(ROOT, file), 'utf8'))
      .filter((l) => !/^[a-z][a-z0-9+.-]*:/i.test(l.target)) // http:, https:, mailto:
      .map((l) => ({ file, ...l })),
  );
}

/** Why a link does not resolve, or null when it does. */
function problem({ file, target }: Checked): string | null {
  const hash = target.indexOf('#');
  const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
  const anchor = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
  const resolved = pathPart === '' ? path.join(ROOT, file) : path.resolve(path.dirname(path.join(ROOT, file)), pathPart);
  if (!resolved.startsWith(ROOT + path.sep)) return `${target} points outside the repository`;
  if (!fs.existsSync(resolved)) return `${path.relative(ROOT, resolved)} does not exist`;
  if (anchor === null) return null;
  if (!resolved.endsWith('.md')) return `#${anchor} on ${path.relative(ROOT, resolved)}, which is not Markdown`;
  const anchors = headingAnchors(fs.readFileSync(resolved, 'utf8'));
  return anchors.has(anchor) ? null : `${path.relative(ROOT, resolved)} has no heading with the anchor #${anchor}`;
}

describe('links in README.md and docs/*.md', () => {
  const all = relativeLinks();

  it('finds the links: README.md links into docs/, and every docs file is linked from docs/README.md', () => {
    expect(all.filter((l) => l.file === 'README.md').length).toBeGreaterThanOrEqual(10);
    const index = new Set(all.filter((l) => l.file === path.join('docs', 'README.md')).map((l) => l.target));
    const unlisted = docFiles().filter((f) => f.startsWith('docs') && f !== path.join('docs', 'README.md') && !index.has(path.basename(f)));
    expect(unlisted).toEqual([]);
  });

  it('every relative link names a file that exists and, with #anchor, a heading in it', () => {
    const broken = all.flatMap((l) => {
      const why = problem(l);
      return why === null ? [] : [`${l.file}:${l.line}: (${l.target}) ${why}`];
    });
    expect(broken).toEqual([]);
  });

  it('the anchors follow GitHub: code spans and punctuation dropped, spaces to hyphens, repeats numbered', () => {
    const anchors = headingAnchors(
      ['# `listen(server, options)` → `Promise<server>`', '## Express, Fastify, Koa', '## Usage', '## Usage', '```', '# not a heading', '```'].join('\n'),
    );
    expect([...anchors]).toEqual(['listenserver-options--promiseserver', 'express-fastify-koa', 'usage', 'usage-1']);
  });

  it('a link to a missing file or heading is reported (the check can fail)', () => {
    expect(problem({ file: 'README.md', line: 1, target: 'docs/no-such-file.md' })).toMatch(/does not exist/);
    expect(problem({ file: 'README.md', line: 1, target: 'docs/api.md#no-such-heading' })).toMatch(/no heading with the anchor #no-such-heading/);
    expect(problem({ file: path.join('docs', 'api.md'), line: 1, target: '#warnings' })).toBeNull();
    expect(links('a `[code](x.md)` span, and [a link](y.md#z)\n```\n[in a block](w.md)\n```\n')).toEqual([{ line: 1, target: 'y.md#z' }]);
  });
});
