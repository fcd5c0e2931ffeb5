/**
 * A cheap structural reading of Helm templates, for where no `helm` binary is at hand: the
 * actions (`{{ ... }}`) of each file, their block nesting (if/range/with/define/block … end),
 * the templates they include, and the `.Values` paths they read. Not a renderer: it catches
 * unbalanced blocks, typos in template names and values that values.yaml does not declare.
 */

export interface Action {
  /** the text between the delimiters, trim markers and spaces removed */
  text: string;
  line: number;
}

/** The actions of a template file, in order; throws on a `{{` never closed. */
export function actions(source: string, file: string): Action[] {
  const out: Action[] = [];
  let at = 0;
  for (;;) {
    const open = source.indexOf('{{', at);
    if (open === -1) break;
    const line = source.slice(0, open).split('\n').length;
    const isComment = /^\{\{-?\s*\/\*/.test(source.slice(open, open + 6));
    const close = isComment ? source.indexOf('*/', open) : source.indexOf('}}', open + 2);
    if (close === -1) throw new Error(`${file}:${line}: "{{" is never closed`);
    const end = isComment ? source.indexOf('}}', close) : close;
    if (end === -1) throw new Error(`${file}:${line}: a comment is never closed with "}}"`);
    const inner = source.slice(open + 2, end).replace(/^-\s/, '').replace(/\s-$/, '').trim();
    if (inner.includes('{{')) throw new Error(`${file}:${line}: "{{" inside an action`);
    if (!isComment) out.push({ text: inner, line });
    at = end + 2;
  }
  // a stray "}}" outside any action
  const stripped = source.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '').replace(/\{\{[\s\S]*?\}\}/g, '');
  const stray = stripped.indexOf('}}');
  if (stray !== -1) throw new Error(`${file}: a "}}" without its "{{"`);
  return out;
}

const OPENERS = new Set(['if', 'range', 'with', 'define', 'block']);

/** Checks if/range/with/define/block … else … end nesting; returns the templates it defines. */
export function checkBlocks(list: Action[], file: string): string[] {
  const stack: { keyword: string; line: number }[] = [];
  const defined: string[] = [];
  for (const { text, line } of list) {
    const keyword = /^([a-z]+)\b/.exec(text)?.[1];
    if (keyword === undefined) continue;
    if (OPENERS.has(keyword)) {
      stack.push({ keyword, line });
      if (keyword === 'define') {
        const name = /^define\s+"([^"]+)"\s*$/.exec(text)?.[1];
        if (!name) throw new Error(`${file}:${line}: define without a quoted name`);
        defined.push(name);
      }
    } else if (keyword === 'else') {
      const top = stack.at(-1);
      if (!top || !['if', 'range', 'with'].includes(top.keyword)) throw new Error(`${file}:${line}: "else" outside if/range/with`);
    } else if (keyword === 'end') {
      if (text !== 'end') throw new Error(`${file}:${line}: "${text}" is not a plain end`);
      if (!stack.pop()) throw new Error(`${file}:${line}: "end" without an open block`);
    }
  }
  const open = stack.at(-1);
  if (open) throw new Error(`${file}:${open.line}: "${open.keyword}" is never ended`);
  return defined;
}

/** Names given to `include` and `template`. */
export function includes(list: Action[]): { name: string; line: number }[] {
  return list.flatMap(({ text, line }) => [...text.matchAll(/\b(?:include|template)\s+"([^"]+)"/g)].map((m) => ({ name: m[1]!, line })));
}

/** `.Values.a.b` paths read (with `$.Values` too), as lists of keys. */
export function valuesPaths(list: Action[]): { path: string[]; line: number }[] {
  return list.flatMap(({ text, line }) => [...text.matchAll(/\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)].map((m) => ({ path: m[1]!.slice(1).split('.'), line })));
}
