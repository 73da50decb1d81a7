// A small TypeScript client for `riskguard serve` (documentation, not a package).
//
//   riskguard serve -p policies/default.yaml &
//   npx tsx examples/serve/client.ts          # or: deno run --allow-net --allow-read ...
//
// Node 18+ (global fetch), no dependencies. The types cover the fields a bot acts on; the
// full documents are riskguard's JSON Schemas (GET /openapi.json).
import { readFileSync } from "node:fs";

export type Outcome = "allow" | "resize" | "deny";

export interface Order {
  symbol: string;
  side: "buy" | "sell";
  amount: number;
  type?: string;
  price?: number;
  leverage?: number;
  reduceOnly?: boolean;
  stopLossPrice?: number;
  clientOrderId?: string;
}

export interface Violation {
  rule: string;
  code: string;
  severity: "info" | "warning" | "error" | "critical";
  message: string;
  symbol: string | null;
}

export interface Decision {
  decision: Outcome;
  decisionId: string;
  policy: { name: string; version: string; digest: string };
  maxAllowedAmount?: number | null;
  /** With an order: the amount to send — the order's on allow, less on resize, 0 on deny. */
  approvedAmount?: number;
  violations: Violation[];
  actions: { type: string; rule: string; [k: string]: unknown }[];
}

/** An RFC 9457 problem document; `problems` locate each fault by JSON path. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  problems?: { path: string; message: string; code: string }[];
}

export class RiskguardError extends Error {
  constructor(public readonly problem: Problem) {
    const where = (problem.problems ?? []).map((p) => `${p.path}: ${p.message}`).join("; ");
    super(`${problem.status} ${problem.detail ?? problem.title}${where ? ` (${where})` : ""}`);
  }
}

export class Riskguard {
  constructor(
    private readonly baseUrl = "http://127.0.0.1:8181",
    private readonly token?: string,
    private readonly timeoutMs = 2000,
  ) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const doc = await res.json();
    if (!res.ok) throw new RiskguardError(doc as Problem);
    return doc as T;
  }

  /** Decide on an order against a full snapshot, or against the account's stored one. */
  check(order: Order, subject: { snapshot: object } | { account: string }): Promise<Decision> {
    return this.call("POST", "/v1/check", { ...subject, order });
  }

  storeSnapshot(account: string, snapshot: object): Promise<{ digest: string }> {
    return this.call("POST", `/v1/snapshots/${encodeURIComponent(account)}`, snapshot);
  }

  async maxOrderAmount(order: Order, account: string): Promise<number | null> {
    const r = await this.call<{ maxOrderAmount: number | null }>("POST", "/v1/max-order-amount", {
      account,
      order,
    });
    return r.maxOrderAmount;
  }

  setTradingState(tradingState: "active" | "reducing" | "halted", reason?: string) {
    return this.call("PUT", "/v1/trading-state", { tradingState, reason });
  }
}

/** What a bot sends: the decision's approved amount (0 when denied or when absent). */
export function amountToSend(d: Decision): number {
  return d.approvedAmount ?? 0;
}

async function main(): Promise<void> {
  const guard = new Riskguard(process.env.RISKGUARD_URL, process.env.RISKGUARD_TOKEN);
  const snapshot = JSON.parse(readFileSync("examples/snapshots/binance-two-cross.json", "utf8"));
  await guard.storeSnapshot("main", snapshot);
  const order: Order = { symbol: "BTC/USDT:USDT", side: "buy", amount: 0.5, leverage: 10 };
  try {
    const d = await guard.check(order, { account: "main" });
    console.log(`${d.decision}: send ${amountToSend(d)} (policy ${d.policy.digest.slice(0, 19)}…)`);
    for (const v of d.violations) console.log(`  ${v.severity} ${v.code}: ${v.message}`);
  } catch (e) {
    // the service is down or refused: a guardrail fails closed, so the order is not sent
    console.error("not sending:", e instanceof Error ? e.message : e);
    process.exitCode = 1;
  }
}

main();
