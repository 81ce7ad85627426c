/**
 * The PostgreSQL store's schema, as numbered migrations. `migrate` applies the missing ones at
 * start, each in its own transaction, under a session advisory lock: three relays starting at the
 * same moment on an empty database take turns, and the later ones find the work done. A database
 * written by a newer relay (a version above the last one here) is refused before anything is
 * written to it.
 *
 * Every name starts with `relay_`, so the tables can share a database (and a schema: pick one with
 * `?options=-c search_path=<schema>` in the URL) with an application's.
 */

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'events, bodies, dedup keys, counters, Visual watches',
    sql: `
CREATE TABLE relay_events (
  id              uuid    PRIMARY KEY,
  route           text    NOT NULL,
  repo            text    NOT NULL,
  event_type      text    NOT NULL,
  body_hash       text    NOT NULL,
  received_at     bigint  NOT NULL,
  state           text    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at bigint  NOT NULL,
  last_error      text,
  claimed_by      text,
  lease_until     bigint  NOT NULL DEFAULT 0,
  delivered_at    bigint,
  requeued_at     bigint
);
-- claim, in due order; and the pending count of stats().
CREATE INDEX relay_events_due ON relay_events (next_attempt_at, received_at) WHERE state = 'pending';
-- claim: the groups other relays hold. Only rows on a lease are in it (a mark or release sets
-- lease_until to 0), so an insert never writes to it.
CREATE INDEX relay_events_leased ON relay_events (lease_until) WHERE lease_until > 0;
-- outbox dead, and the dead count of stats().
CREATE INDEX relay_events_dead ON relay_events (received_at) WHERE state = 'dead';
-- The bodies apart from the small, often-updated event rows: PostgreSQL writes a new row version
-- on every claim and mark, which then copies 150 bytes, not a 1-2 KB body.
CREATE TABLE relay_bodies (
  id    uuid PRIMARY KEY,
  body  text NOT NULL,
  extra text
);
-- Deduplication is this primary key: two relays storing one delivery at once cannot both win.
CREATE TABLE relay_dedup (
  route      text   NOT NULL,
  body_hash  text   NOT NULL,
  event_id   uuid   NOT NULL,
  first_seen bigint NOT NULL,
  PRIMARY KEY (route, body_hash)
);
-- The delivered count, kept by markDelivered and prune (counting a week of delivered rows on every
-- scrape would read them all). Inserts never touch it, so they never wait on each other here.
CREATE TABLE relay_counters (name text PRIMARY KEY, n bigint NOT NULL);
INSERT INTO relay_counters (name, n) VALUES ('delivered', 0);
CREATE TABLE relay_visual_watches (
  route         text    NOT NULL,
  build_id      text    NOT NULL,
  repo          text    NOT NULL,
  event_type    text    NOT NULL,
  body          text    NOT NULL,
  extra         text,
  data_center   text,
  first_seen_at bigint  NOT NULL,
  next_check_at bigint  NOT NULL,
  expires_at    bigint  NOT NULL,
  checks        integer NOT NULL DEFAULT 0,
  last_error    text,
  PRIMARY KEY (route, build_id)
);
CREATE INDEX relay_visual_watches_due ON relay_visual_watches (next_check_at);
`,
  },
  {
    version: 2,
    description: 'the delivery console: the events by time, dispatch attempts, Visual re-reads, refused requests',
    sql: `
-- The console's list: every event, newest first (uuid order is the order of its text).
CREATE INDEX relay_events_received ON relay_events (received_at, id);
-- Every dispatch attempt per event (the latest 100), written by the dispatcher's marks in the same
-- statement; deleted with the event by prune.
CREATE TABLE relay_attempts (
  seq         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id    uuid    NOT NULL,
  at          bigint  NOT NULL,
  dispatch_id text    NOT NULL,
  events      integer NOT NULL,
  status      integer,
  message     text    NOT NULL,
  result      text    NOT NULL,
  code        text
);
CREATE INDEX relay_attempts_event ON relay_attempts (event_id, seq);
-- Visual refresh's re-reads per route and build (the latest 200); pruned by age with delivered events.
CREATE TABLE relay_visual_checks (
  seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  route    text   NOT NULL,
  build_id text   NOT NULL,
  at       bigint NOT NULL,
  outcome  text   NOT NULL,
  status   text,
  summary  text,
  error    text,
  event_id text
);
CREATE INDEX relay_visual_checks_build ON relay_visual_checks (route, build_id, seq);
CREATE INDEX relay_visual_checks_at ON relay_visual_checks (at);
-- Refused requests (metadata only) from every relay, written in batches and pruned by age and count.
-- Ids sort as the console sorts them: byte order.
CREATE TABLE relay_requests (
  seq          bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id           text    COLLATE "C" NOT NULL UNIQUE,
  received_at  bigint  NOT NULL,
  route        text,
  repo         text,
  status       integer NOT NULL,
  code         text    NOT NULL,
  reason       text    NOT NULL,
  bytes        integer NOT NULL,
  source       text,
  signature    text,
  issues       text    NOT NULL,
  event        text,
  duplicate_of text
);
CREATE INDEX relay_requests_received ON relay_requests (received_at, id);
`,
  },
];

export const LATEST_SCHEMA = MIGRATIONS.at(-1)!.version;

/** Pure: the migrations a database at `current` still needs, or why it must not be touched. */
export function pendingMigrations(
  current: number,
  migrations: readonly Migration[] = MIGRATIONS,
): { readonly ok: true; readonly todo: readonly Migration[] } | { readonly ok: false; readonly reason: string } {
  const latest = migrations.at(-1)?.version ?? 0;
  if (current > latest) {
    return { ok: false, reason: `the database was written by a newer relay (schema ${current}, this relay knows up to ${latest}): upgrade the relay` };
  }
  return { ok: true, todo: migrations.filter((m) => m.version > current) };
}
