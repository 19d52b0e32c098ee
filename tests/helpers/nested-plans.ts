// The plans of the statements a function runs inside, as they ran: auto_explain on one
// superuser connection of its own, nested statements included, each plan sent back as a
// notice (JSON, with actual rows and loops, no timing). For tests that count the rows a
// database function reads, which EXPLAIN of the outer call cannot show.
import postgres from 'postgres';

/** One nested statement: its text and its plan tree. */
export type NestedPlan = { 'Query Text': string; Plan: PlanNode };
type PlanNode = { 'Relation Name'?: string; 'Actual Rows': number; 'Actual Loops'?: number; Plans?: PlanNode[] };

/** Runs `fn` on the probe connection and answers what it returned and every plan logged. */
export async function withNestedPlans<T>(
  adminUrl: string,
  fn: (probe: postgres.Sql) => Promise<T>,
): Promise<{ result: T; plans: NestedPlan[] }> {
  const notices: string[] = [];
  const probe = postgres(adminUrl, { max: 1, onnotice: (n) => notices.push(n.message) });
  try {
    await probe.unsafe(`load 'auto_explain'; set auto_explain.log_min_duration = 0;
      set auto_explain.log_nested_statements = on; set auto_explain.log_analyze = on;
      set auto_explain.log_timing = off; set auto_explain.log_format = 'json'; set auto_explain.log_level = 'notice'`);
    const result = await fn(probe);
    return { result, plans: notices.map((m) => JSON.parse(m.slice(m.indexOf('{'))) as NestedPlan) };
  } finally {
    await probe.end();
  }
}

/** The rows a plan tree read from `table`, over all its loops. */
export function rowsRead(node: PlanNode, table: string): number {
  return (node['Relation Name'] === table ? node['Actual Rows'] * (node['Actual Loops'] ?? 1) : 0) +
    (node.Plans ?? []).reduce((n, p) => n + rowsRead(p, table), 0);
}

/** How many times a plan tree scanned `table` (its scans' loops). */
export function scansOf(node: PlanNode, table: string): number {
  return (node['Relation Name'] === table ? node['Actual Loops'] ?? 1 : 0) +
    (node.Plans ?? []).reduce((n, p) => n + scansOf(p, table), 0);
}
