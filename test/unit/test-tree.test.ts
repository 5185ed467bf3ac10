// The folder is the jest project (jest.config.js: one project per folder of test/). A *.test.ts
// anywhere else under test/ is in no project and would never run: this fails instead.
import * as fs from 'node:fs';
import * as path from 'node:path';

const REPO = path.join(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { projects } = require('../../jest.config.js') as { projects: Array<{ displayName: string; roots: string[] }> };

/** Every *.test.ts below `dir`, relative to the repository, with '/' separators. */
function testFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'node_modules') found.push(...testFiles(file));
    else if (entry.isFile() && entry.name.endsWith('.test.ts')) found.push(path.relative(REPO, file).split(path.sep).join('/'));
  }
  return found;
}

describe('the test tree', () => {
  const folders = projects.map((p) => p.roots.map((r) => r.replace('<rootDir>/', '')));

  it('each project is one folder of test/, named as the project', () => {
    expect(folders).toEqual(projects.map((p) => [`test/${p.displayName}`]));
    for (const [folder] of folders) expect(fs.statSync(path.join(REPO, folder)).isDirectory()).toBe(true);
  });

  it('every *.test.ts under test/ is in a project folder', () => {
    const all = testFiles(path.join(REPO, 'test'));
    expect(all.length).toBeGreaterThan(0);
    expect(all.filter((f) => !folders.some(([folder]) => f.startsWith(`${folder}/`)))).toEqual([]);
  });
});
