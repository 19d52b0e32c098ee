// assign-ticket (added when a direct UPDATE gives a ticket a team and leaves it
// unassigned, 20261201091000_department_routing.sql): the team's auto-assignment, run
// after that commit so the team is locked before the ticket (private.auto_assign_ticket).
// Nothing to do when the ticket moved on meanwhile (another team, an assignee, finished).
import { asService } from '../../db.ts';
import type { Task } from '../types.ts';

export const assignTicket: Task<{ tenant_id: string; ticket_id: string; team_id: string; chain?: string }> = {
  async run(job) {
    const { tenant_id, ticket_id, team_id, chain } = job.payload;
    const assigned = await asService(tenant_id, async (tx) => {
      // An automation rule's team change: the assignment's event carries the same chain
      // of rules, so the loop guard holds across this job (20261202141500).
      if (chain) await tx`select set_config('private.automation_chain', ${chain}, true)`;
      return (await tx<
        { assignee: string | null }
      >`select private.auto_assign_ticket(${tenant_id}, ${ticket_id}, ${team_id}) as assignee`)[0].assignee;
    });
    return { assigned: assigned ? 1 : 0 };
  },
};
