/** @jsxImportSource hono/jsx */
import type { Identity } from '../auth/identity.ts';
import type { ReleaseRequest, RequestStatus } from '../quarantine/release-requests.ts';
import { Layout, Notice, When } from './layout.tsx';

export const REQUEST_FILTERS = ['pending', 'approved', 'denied', 'all'] as const;

/**
 * Admins and domain admins decide the release requests of their scope: approve (the normal
 * release, by them) or deny with a reason the owner is told. Text from the owner (note) is escaped by JSX.
 */
export function RequestsPage(props: {
  who: Identity;
  csrf: string;
  items: ReleaseRequest[];
  status: RequestStatus | 'all';
  notice: string | null;
  error: string | null;
}) {
  return (
    <Layout title="Release requests" who={props.who} wide>
      <h1>Release requests</h1>
      <Notice text={props.notice} />
      <Notice text={props.error} error />
      <form method="get" action="/ui/requests" class="filters">
        <label for="status">Show</label>
        <select id="status" name="status">
          {REQUEST_FILTERS.map((s) => (
            <option value={s} selected={s === props.status}>
              {s}
            </option>
          ))}
        </select>
        <button type="submit">Show</button>
      </form>
      {props.items.length === 0 ? (
        <p>No {props.status === 'all' ? '' : `${props.status} `}release requests.</p>
      ) : (
        <div class="table-wrap">
          <table class="list">
            <thead>
              <tr>
                <th>Asked</th>
                <th>Message</th>
                <th>For</th>
                <th>Note</th>
                <th>Status</th>
                <th>Decision</th>
              </tr>
            </thead>
            <tbody>
              {props.items.map((r) => (
                <tr>
                  <td data-label="Asked">
                    <When iso={r.created_at} />
                  </td>
                  <td data-label="Message">
                    <a href={`/ui/quarantine/${r.mail_id}`}>Open the message</a>
                  </td>
                  <td data-label="For" class="addr">
                    {r.recipient}
                  </td>
                  <td data-label="Note">{r.note ?? ''}</td>
                  <td data-label="Status">{r.status}</td>
                  <td data-label="Decision">
                    {r.status === 'pending' ? (
                      <>
                        <form method="post" action={`/ui/requests/${r.id}/approve`}>
                          <input type="hidden" name="csrf" value={props.csrf} />
                          <button type="submit">Approve and release</button>
                        </form>
                        <form method="post" action={`/ui/requests/${r.id}/deny`}>
                          <input type="hidden" name="csrf" value={props.csrf} />
                          <label for={`reason-${r.id}`}>Reason for the owner</label>
                          <input id={`reason-${r.id}`} name="reason" required maxlength={1000} />
                          <button type="submit" class="danger">
                            Deny
                          </button>
                        </form>
                      </>
                    ) : (
                      <span>
                        {r.decided_by ?? ''}
                        {r.reason ? `: ${r.reason}` : ''}
                      </span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Layout>
  );
}
