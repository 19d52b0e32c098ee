// The README's fenced code blocks, by section, for the tests that run them as written.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { root } from '../../scripts/stack.mjs';

export interface CodeBlock {
  lang: string;
  code: string;
}

/** The fenced code blocks of a README section: from its heading (any level) to the next
 *  heading, headings inside code blocks (shell comments) not counted. */
export function readmeBlocks(heading: string): CodeBlock[] {
  const lines = readFileSync(path.join(root, 'README.md'), 'utf8').split('\n');
  const blocks: CodeBlock[] = [];
  let inSection = false;
  let found = false;
  let fence: CodeBlock | undefined;
  for (const line of lines) {
    if (fence) {
      if (line.startsWith('```')) {
        if (inSection) blocks.push(fence);
        fence = undefined;
      } else {
        fence.code += `${line}\n`;
      }
      continue;
    }
    if (line.startsWith('```')) {
      fence = { lang: line.slice(3).trim(), code: '' };
      continue;
    }
    const h = line.match(/^#{1,6} (.+)$/);
    if (h) {
      inSection = h[1].trim() === heading;
      found ||= inSection;
    }
  }
  if (!found) throw new Error(`README has no section "${heading}"`);
  return blocks;
}

/** The commands of a shell block, one per line: comments dropped, continuations joined. */
export function shellCommands(code: string): string[] {
  return code
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l && !l.startsWith('#'));
}
