// Reads the project's Markdown the way GitHub renders it, for the tests of the documentation: its
// fenced code blocks (with the example marker before each), its headings' anchors, its links.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository: the nearest folder above this file with node-toa's package.json (wherever test/ puts helpers). */
export const ROOT = ((): string => {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, 'utf8')).name === 'node-toa') return dir;
  }
  throw new Error(`no node-toa package.json above ${__dirname}`);
})();

/** The documentation whose examples run and whose links must resolve: README.md and docs/*.md. */
export function docFiles(): string[] {
  const docs = fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => path.join('docs', name));
  return ['README.md', ...docs];
}

export interface CodeBlock {
  /** Relative to the repository, e.g. `docs/api.md`. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The fence's info string, first word (`js`, `ts`, `sh`, or '' for none). */
  lang: string;
  /** What `<!-- example: WHAT -->` on the line before the fence (blank lines between allowed) says, or null. */
  marker: string | null;
  code: string;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/;
const MARKER = /^<!--\s*example:\s*(.*?)\s*-->\s*$/;

/** Every fenced code block of a file. */
export function codeBlocks(file: string, text = fs.readFileSync(path.join(ROOT, file), 'utf8')): CodeBlock[] {
  const lines = text.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]);
    if (!open) continue;
    const fence = open[2];
    let marker: string | null = null;
    for (let j = i - 1; j >= 0; j--) {
      if (lines[j].trim() === '') continue;
      const m = MARKER.exec(lines[j].trim());
      if (m) marker = m[1];
      break;
    }
    const body: string[] = [];
    const start = i;
    for (i++; i < lines.length && !(lines[i].trim().startsWith(fence[0].repeat(fence.length)) && lines[i].trim().replace(/[`~]/g, '') === ''); i++) {
      body.push(lines[i]);
    }
    blocks.push({ file, line: start + 1, lang: open[3].toLowerCase(), marker, code: body.join('\n') + '\n' });
  }
  return blocks;
}

/** The lines of a file outside fenced code blocks, with their 1-based numbers. */
function proseLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fence: string | null = null;
  text.split('\n').forEach((line, i) => {
    const open = FENCE.exec(line);
    if (fence === null && open) fence = open[2][0];
    else if (fence !== null && line.trim().startsWith(fence.repeat(3)) && line.trim().replace(/[`~]/g, '') === '') fence = null;
    else if (fence === null) out.push({ line: i + 1, text: line });
  });
  return out;
}

/**
 * GitHub's anchor for a heading (github-slugger): the rendered text (code spans, emphasis and link
 * targets dropped), lower-cased, every character that is not a letter, mark, digit, connector,
 * space or hyphen removed, spaces turned into hyphens; a repeated anchor gets `-1`, `-2`, ...
 */
export function headingAnchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { text: line } of proseLines(text)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const rendered = m[1]
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/[`*]/g, '');
    const base = rendered
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

export interface Link {
  line: number;
  target: string;
}

/**
 * Inline links and images, outside code blocks and code spans. A code span may wrap onto the next
 * line, so spans are removed per paragraph (blanked, to keep line numbers).
 */
export function links(text: string): Link[] {
  const found: Link[] = [];
  const prose = proseLines(text);
  for (let i = 0; i < prose.length; ) {
    const paragraph: { line: number; text: string }[] = [];
    for (; i < prose.length && prose[i].text.trim() !== ''; i++) {
      if (paragraph.length > 0 && prose[i].line !== paragraph[paragraph.length - 1].line + 1) break;
      paragraph.push(prose[i]);
    }
    if (paragraph.length === 0) {
      i++;
      continue;
    }
    const joined = paragraph
      .map((p) => p.text)
      .join('\n')
      .replace(/(`+)[\s\S]*?\1/g, (span) => span.replace(/[^\n]/g, ' '));
    for (const m of joined.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const lineInParagraph = joined.slice(0, m.index).split('\n').length - 1;
      found.push({ line: paragraph[lineInParagraph].line, target: m[1] });
    }
  }
  return found;
}
