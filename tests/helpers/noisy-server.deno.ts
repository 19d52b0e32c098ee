// A stand-in for a functions server that talks a lot (tests/cli.test.ts): it says it
// listens, prints about 4 MB of request lines, then a last line, and waits to be killed.
console.log('Listening on http://127.0.0.1:0/');
const line = 'x'.repeat(999);
for (let i = 0; i < 4000; i++) console.log(line);
console.log('last line');
setInterval(() => {}, 60_000);
