// Evaluates the `${{ ... }}` expressions of a GitHub Action's `runs.args` with GitHub's
// own expression engine (@actions/expressions, pinned in package.json), so that the test
// of action.yml checks the argv GitHub would really pass to the container.
//
// stdin:  {"args": ["${{ inputs.command }}", ...], "inputs": {"command": "deploy", ...}}
// stdout: ["deploy", ...]
import { Evaluator, Lexer, Parser, data } from "@actions/expressions";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { args, inputs } = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const context = new data.Dictionary({
  key: "inputs",
  value: new data.Dictionary(
    ...Object.entries(inputs).map(([key, value]) => ({ key, value: new data.StringData(value) })),
  ),
});

function evaluate(expression) {
  const lexed = new Lexer(expression).lex();
  const parsed = new Parser(lexed.tokens, ["inputs"], []).parse();
  return new Evaluator(parsed, context).evaluate().coerceString();
}

const argv = args.map((arg) =>
  String(arg).replace(/\$\{\{(.*?)\}\}/gs, (_, expression) => evaluate(expression.trim())),
);
process.stdout.write(JSON.stringify(argv) + "\n");
