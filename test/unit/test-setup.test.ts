// The one list of Debian packages (scripts/test-setup.js, which `npm test` runs before jest) is the
// one every other file defers to: each package a test, helper or script tells its reader to
// `apt-get install` is on it, and .ci/run installs nothing itself but runs the set-up.
import * as fs from 'node:fs';
import * as path from 'node:path';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { PACKAGES } = require('../../scripts/test-setup.js') as { PACKAGES: { name: string; usedBy: string; why: string }[] };

const repo = path.join(__dirname, '..', '..');
const read = (rel: string): string => fs.readFileSync(path.join(repo, rel), 'utf8');

function files(dir: string): string[] {
  return fs.readdirSync(path.join(repo, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : files(rel);
    return /\.(ts|js|cjs|sh|py)$/.test(e.name) ? [rel] : [];
  });
}

describe('the Debian packages the tests need: one list, in scripts/test-setup.js', () => {
  it('has each package once, each for npm test or npm run fuzz, with why', () => {
    const names = PACKAGES.map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    for (const p of PACKAGES) expect([p.name, ['npm test', 'npm run fuzz'].includes(p.usedBy), p.why.length > 0]).toEqual([p.name, true, true]);
  });

  it('names every package a test, helper or script says to `apt-get install`', () => {
    const listed = new Set(PACKAGES.map((p) => p.name));
    const asked: string[] = [];
    for (const file of [...files('test'), ...files('scripts')]) {
      // The words after `apt-get install` up to the first one that is not a package name.
      for (const m of read(file).matchAll(/apt-get install((?: +-[-\w]+)*(?: +[a-z0-9][a-z0-9.+-]*[a-z0-9+])+)/g)) {
        for (const word of m[1].trim().split(/ +/)) if (!word.startsWith('-')) asked.push(`${word} (${file})`);
      }
    }
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.filter((a) => !listed.has(a.split(' ')[0]))).toEqual([]);
  });

  it('.ci/run runs the set-up and `npm test`, with no package list or apt-get of its own', () => {
    const ci = read('.ci/run');
    expect(ci).toMatch(/^node scripts\/test-setup\.js\b/m);
    expect(ci).toMatch(/"\$npm" test -- /);
    // A list of packages there would be useless without these.
    expect(ci).not.toMatch(/apt-get|apt |dpkg/);
  });

  it('`npm test` runs the set-up before jest', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: { test: string } };
    expect(pkg.scripts.test).toBe('node scripts/test-setup.js && jest');
  });
});
