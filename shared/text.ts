// Text cut to a column's length as Postgres counts it: in characters (code points), not
// JavaScript's UTF-16 units, whose slice can split a pair and send half an emoji.

/** The first `max` characters of `text`. */
export const firstCharacters = (text: string, max: number) => [...text].slice(0, max).join('');
