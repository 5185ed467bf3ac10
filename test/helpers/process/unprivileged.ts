// Running the package's CLI as an unprivileged user (nobody), from any clone.
//
// `setpriv --reuid nobody` drops every capability, and with them the right to read a clone under
// /root (mode 0700) or any directory nobody cannot enter. So the tests do not run the clone: they
// run a copy of what the CLI needs at run time (package.json, bin/, dist/, the built addon and the
// production dependencies from node_modules), made world-readable in a fresh temporary directory
// whose every parent nobody may enter. That is what an operator's installed package looks like.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findExe } from '../jest/requirements';

export interface Unprivileged {
  user: string;
  uid: number;
  gid: number;
  /** runs a command as that user, with no capabilities and no supplementary groups */
  prefix: string[];
  /** a temporary directory that user may enter, for installCopy() */
  base: string;
}

function passwdEntry(user: string): { uid: number; gid: number } | null {
  let line = '';
  try {
    line = execFileSync('getent', ['passwd', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    try {
      line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`)) ?? '';
    } catch {
      /* none */
    }
  }
  const f = line.split(':');
  if (f.length < 4 || !/^\d+$/.test(f[2]) || !/^\d+$/.test(f[3])) return null;
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

let cached: Unprivileged | string | undefined;

/** nobody, ready to run node; or why not (a string). Checked once per test file. */
export function unprivileged(): Unprivileged | string {
  if (cached !== undefined) return cached;
  const why = (reason: string) => (cached = reason);
  if (process.platform !== 'linux') return why(`running as nobody is tested on Linux (platform is ${process.platform})`);
  if (process.getuid?.() !== 0) return why('needs root, to run the CLI as nobody');
  const setpriv = findExe('setpriv');
  if (setpriv === null) return why('needs setpriv (util-linux), to run the CLI as nobody');
  const user = 'nobody';
  const ids = passwdEntry(user);
  if (ids === null) return why('there is no user nobody');
  const base = copyBase();
  if (base === null) return why(`no temporary directory that ${user} may enter (TMPDIR is ${os.tmpdir()})`);
  const prefix = [setpriv, '--reuid', String(ids.uid), '--regid', String(ids.gid), '--clear-groups', '--inh-caps=-all'];
  // node itself must be runnable by nobody (a node under /root/.nvm is not).
  const probe = spawnSync(prefix[0], [...prefix.slice(1), process.execPath, '-e', ''], { cwd: '/', encoding: 'utf8', timeout: 20_000 });
  if (probe.status !== 0) {
    return why(`nobody cannot run ${process.execPath} through setpriv: ${(probe.stderr || probe.error?.message || `exit ${probe.status}`).trim()}`);
  }
  return (cached = { user, uid: ids.uid, gid: ids.gid, prefix, base });
}

/** A directory every user may enter: each of its parents has the x bit for others. */
function enterableByAll(dir: string): boolean {
  let d = path.resolve(dir);
  for (;;) {
    try {
      const st = fs.statSync(d);
      if (!st.isDirectory() || (st.mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    const up = path.dirname(d);
    if (up === d) return true;
    d = up;
  }
}

/** Where the copy can go: the first temporary directory every user may enter, or null. */
function copyBase(): string | null {
  const candidates = [os.tmpdir(), '/tmp', '/var/tmp', '/dev/shm'];
  return candidates.find(enterableByAll) ?? null;
}

/** Directories 0755; files readable by all, executable by all when executable by the owner. */
function openUp(p: string): void {
  const st = fs.lstatSync(p);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    fs.chmodSync(p, 0o755);
    for (const e of fs.readdirSync(p)) openUp(path.join(p, e));
  } else {
    fs.chmodSync(p, st.mode & 0o100 ? 0o755 : 0o644);
  }
}

/** The package directory of `name` as node would find it from `from` (node_modules up to root). */
function packageDir(root: string, from: string, name: string): string {
  for (let d = from; ; d = path.dirname(d)) {
    const candidate = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (d === root || path.dirname(d) === d) break;
  }
  throw new Error(`dependency ${name} (needed by ${from}) is not installed: run npm install`);
}

export interface Installed {
  /** the copy's root: run the CLI with this as cwd */
  dir: string;
  /** bin/node-toa in the copy */
  bin: string;
  remove(): void;
}

/**
 * Copies what `node bin/node-toa` needs from the package at `root` into a new directory under
 * `base` that every user can read. Throws if something is missing (dist/ or the addon not built).
 */
export function installCopy(root: string, base: string): Installed {
  const dir = fs.mkdtempSync(path.join(base, 'node-toa-cli-'));
  try {
    const copy = (from: string) => {
      const rel = path.relative(root, from);
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.cpSync(from, path.join(dir, rel), { recursive: true, dereference: true });
    };
    for (const p of ['package.json', 'bin', 'dist']) {
      if (!fs.existsSync(path.join(root, p))) throw new Error(`${p} is missing in ${root}: run npm install`);
      copy(path.join(root, p));
    }
    // The addon as node-gyp-build finds it: a local build, or the prebuilds.
    const release = path.join(root, 'build', 'Release');
    const addons = fs.existsSync(release) ? fs.readdirSync(release).filter((f) => f.endsWith('.node')) : [];
    for (const f of addons) copy(path.join(release, f));
    if (fs.existsSync(path.join(root, 'prebuilds'))) copy(path.join(root, 'prebuilds'));
    if (addons.length === 0 && !fs.existsSync(path.join(root, 'prebuilds'))) throw new Error('no built addon (build/Release/*.node or prebuilds/): run npm install');
    // The production dependencies, transitively, at the same places under node_modules.
    const seen = new Set<string>();
    const walk = (pkgDir: string) => {
      const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as {
        dependencies?: Record<string, string>;
        optionalDependencies?: Record<string, string>;
      };
      for (const name of Object.keys({ ...pkg.dependencies })) {
        const dep = packageDir(root, pkgDir, name);
        if (seen.has(dep)) continue;
        seen.add(dep);
        copy(dep);
        walk(dep);
      }
      for (const name of Object.keys({ ...pkg.optionalDependencies })) {
        let dep: string;
        try {
          dep = packageDir(root, pkgDir, name);
        } catch {
          continue; // optional: not installed on this platform
        }
        if (seen.has(dep)) continue;
        seen.add(dep);
        copy(dep);
        walk(dep);
      }
    };
    walk(root);
    openUp(dir);
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    bin: path.join(dir, 'bin', 'node-toa'),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
