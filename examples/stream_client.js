#!/usr/bin/env node
// A Node.js bot asking riskguard before each order, over `riskguard check --stream`.
//
//   node examples/stream_client.js            (from the repository root; riskguard on PATH,
//                                              or RISKGUARD="python -m riskguard")
//
// riskguard starts once; each request is one JSON line on its stdin and each answer one
// line on its stdout, matched by `id`. The snapshot is sent once per account update and
// later orders only name the account.
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const readline = require("node:readline");

const cmd = (process.env.RISKGUARD || "riskguard").split(" ");
const guard = spawn(cmd[0], [...cmd.slice(1), "check", "--stream", "-p", "policies/default.yaml"], {
  stdio: ["pipe", "pipe", "inherit"],
});
const pending = new Map();
let nextId = 1;
readline.createInterface({ input: guard.stdout }).on("line", (line) => {
  const answer = JSON.parse(line);
  const done = pending.get(answer.id);
  pending.delete(answer.id);
  if (done) done(answer);
});

function ask(message) {
  const id = nextId++;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    guard.stdin.write(JSON.stringify({ id, ...message }) + "\n");
  });
}

async function main() {
  const snapshot = JSON.parse(fs.readFileSync("examples/snapshots/binance-two-cross.json", "utf8"));
  const buy = { symbol: "BTC/USDT:USDT", side: "buy", type: "limit", amount: 0.3, price: 61000, leverage: 10 };

  // 1. a new account snapshot, checked with the first order
  let d = await ask({ account: "main", snapshot, order: buy });
  console.log(`buy 0.3 BTC -> ${d.decision}` + (d.decision === "resize" ? ` to ${d.approvedAmount}` : ""));

  // 2. the next order reuses the stored snapshot: only the order crosses the pipe
  d = await ask({ account: "main", order: { ...buy, amount: 0.1 } });
  console.log(`buy 0.1 BTC -> ${d.decision}`);

  // 3. a malformed request gets an error line; the guardrail keeps running
  d = await ask({ account: "main", order: { ...buy, amount: -1 } });
  console.log(`bad order -> ${d.error.code}: ${d.error.problems[0].path} ${d.error.problems[0].message}`);

  // 4. kill switch: nothing new gets through while halted
  await ask({ control: { tradingState: "halted", reason: "exchange incident" } });

  guard.stdin.end();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
