/** Event ids for both stores (src/relay/outbox/sqlite-store.ts, postgres-store.ts). */
import { randomFillSync } from 'node:crypto';
import { v7 as uuidV7 } from 'uuid';

/** Random bytes for event ids, drawn 4 KB at a time: uuid's own source asks the system for each id (~2 µs). */
let idRandom = Buffer.alloc(0);
let idRandomAt = 0;
/** The last id's time and counter, so ids made in one millisecond still sort in the order made. */
const idClock = { msecs: -1, seq: 0 };

/**
 * A new event's id, a UUIDv7: time-ordered, so an index on ids grows at its end (one page per
 * commit) instead of taking a random page per event, as a random UUID's would. Within a
 * millisecond the counter counts up from a random start, as uuid's own v7() does.
 */
export function eventId(): string {
  if (idRandomAt + 16 > idRandom.length) {
    idRandom = randomFillSync(Buffer.allocUnsafe(4096));
    idRandomAt = 0;
  }
  const random = idRandom.subarray(idRandomAt, idRandomAt + 16);
  idRandomAt += 16;
  const now = Date.now();
  if (now > idClock.msecs) {
    idClock.msecs = now;
    idClock.seq = random.readUInt32BE(6) & 0x7fffffff;
  } else {
    idClock.seq = (idClock.seq + 1) | 0;
    if (idClock.seq === 0) idClock.msecs += 1;
  }
  return uuidV7({ random, msecs: idClock.msecs, seq: idClock.seq });
}
