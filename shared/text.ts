// Text cut to a column's length as Postgres counts it: in characters (code points), not
// JavaScript's UTF-16 units, whose slice can split a pair and send half an emoji.

/** The first `max` characters of `text`. */
export const firstCharacters = (text: string, max: number) => [...text].slice(0, max).join('');

/** The characters (code points) in `text`, as Postgres's char_length and zod's .max count
 *  them: an emoji is one, not its two UTF-16 units. Only a pair counts once; a lone half is
 *  a character of its own, as zod counts it. */
export function characterCount(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    if ((text.charCodeAt(i) & 0xfc00) === 0xd800 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      count--;
      i++;
    }
  }
  return count;
}
