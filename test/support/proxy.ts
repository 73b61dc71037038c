import net, { type AddressInfo } from 'node:net';

/** A TCP proxy to the control plane whose connections the test can cut, and refuse until restored. */
export async function startProxy(target: URL): Promise<{ addr: string; cut(): void; restore(): void; close(): Promise<void> }> {
  const open = new Set<net.Socket>();
  let down = false;
  const server = net.createServer((client) => {
    if (down) return void client.destroy();
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      open.add(a);
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => (open.delete(a), b.destroy()));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const cut = () => {
    down = true;
    for (const s of open) s.destroy();
  };
  return {
    addr: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut,
    restore() {
      down = false;
    },
    close: () => {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
