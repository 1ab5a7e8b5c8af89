declare module '../db/schema.js' {
  interface Tables {
    reports: ReportRow;
  }
}

/** One report: of an event (room_id and event_id), a room (room_id) or a user (target_user_id). */
export interface ReportRow {
  report_id: string;
  kind: 'event' | 'room' | 'user';
  reporter: string;
  room_id: string | null;
  event_id: string | null;
  target_user_id: string | null;
  reason: string | null;
  received_ts: number;
}
