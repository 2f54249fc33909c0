import type { RouterOutputs } from "../trpc.ts";
import { Empty } from "./States.tsx";
import { Time } from "./Time.tsx";

type ScalingEvent = RouterOutputs["scaling"]["events"]["items"][number];

export function EventsTable({ events }: { events: ScalingEvent[] }) {
  if (events.length === 0) return <Empty>No scaling events yet.</Empty>;
  return (
    <div className="table-scroll">
      <table data-testid="events">
        <thead>
          <tr>
            <th scope="col">created</th>
            <th scope="col">type</th>
            <th scope="col">from → to</th>
            <th scope="col">trigger</th>
            <th scope="col">status</th>
            <th scope="col">duration</th>
            <th scope="col">error</th>
          </tr>
        </thead>
        <tbody>
          {events.map((event) => (
            <tr key={event.id} data-event-id={event.id}>
              <td>
                <Time value={event.createdAt} />
              </td>
              <td>{event.eventType}</td>
              <td>
                {event.previousReplicas} → {event.newReplicas}
              </td>
              <td>{event.triggeredBy}</td>
              <td>
                <span className={`status ${event.status}`} data-testid="event-status">
                  {event.status}
                </span>
              </td>
              <td>{event.durationMs === null ? "—" : `${event.durationMs} ms`}</td>
              <td>{event.error ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
