// Questions a browser script asks its Rust test (what only the test can do: change what a
// camera server sends, step a service's clock, look at a file): one JSON line on stdout, the
// answer one JSON line on stdin (tests/src/browser.rs `run_script` answers them). A script
// importing this reads stdin until it ends, so it ends with process.exit.
import { createInterface } from 'node:readline';

/** How long an answer may take by default. */
const ANSWER_TIMEOUT = 5000;

const answers = [];
const waiters = [];
createInterface({ input: process.stdin }).on('line', (line) => {
  const w = waiters.shift();
  if (w) w(line); else answers.push(line);
});

/** Asks `question` (an object with `ask`) and returns the test's answer, parsed. */
export async function ask(question, timeout = ANSWER_TIMEOUT) {
  console.log(JSON.stringify(question));
  const line = answers.length ? answers.shift() : await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${JSON.stringify(question)}`)), timeout);
    waiters.push((l) => { clearTimeout(timer); resolve(l); });
  });
  return JSON.parse(line);
}
