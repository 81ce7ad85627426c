import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Tell the parent which port we got: one line on stdout. */
export function announce(server: Server): void {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`listening ${port}\n`);
}
