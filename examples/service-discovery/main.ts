// Service discovery with leased keys and a prefix watch.
//
//   npm run example:service-discovery
//
// Three instances of an "api" service register themselves under
// services/api/<name> with a lease they keep alive. A client on another
// member lists the instances once, then follows a prefix watch from the next
// revision (etcd's get-then-watch pattern), so it never misses a change.
// One instance stops renewing (as a crashed process would): its key vanishes
// when the lease expires, and the client sees the DELETE.
import { text } from '../../src/index.js';
import { startLocalCluster } from '../lib/local-cluster.js';

const cluster = await startLocalCluster();
try {
  await cluster.leader();
  const [a, b, c] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];

  // each instance registers through a different member, with a 2 s lease
  const instances = [
    { name: 'api-1', node: a, addr: '10.0.0.1:8080' },
    { name: 'api-2', node: b, addr: '10.0.0.2:8080' },
    { name: 'api-3', node: c, addr: '10.0.0.3:8080' },
  ];
  const TTL_S = 2;
  const keepers: NodeJS.Timeout[] = [];
  // when each instance last renewed its lease (a keep-alive confirmed, or the grant)
  const renewedAt = new Map<string, number>();
  for (const inst of instances) {
    const sentAt = Date.now();
    const lease = await inst.node.leaseGrant(TTL_S);
    renewedAt.set(inst.name, sentAt);
    await inst.node.put(`services/api/${inst.name}`, inst.addr, { lease: lease.id });
    keepers.push(
      setInterval(() => {
        const at = Date.now();
        inst.node.leaseKeepAlive(lease.id).then(() => renewedAt.set(inst.name, at), () => undefined);
      }, 500),
    );
  }

  // the client: list, then watch from the next revision
  const endpoints = new Map<string, string>();
  const listing = await c.range({ key: 'services/api/', prefix: true });
  for (const kv of listing.kvs) endpoints.set(text(kv.key), text(kv.value));
  console.log(`client sees ${endpoints.size} instances at revision ${listing.header.revision}:`, [...endpoints.values()]);
  const watch = c.watch('services/api/', { prefix: true, startRevision: listing.header.revision + 1 });
  const gone = new Promise<string>((resolve) => {
    watch.on('delete', (ev) => {
      endpoints.delete(text(ev.kv.key));
      console.log(`client: ${text(ev.kv.key)} left (revision ${ev.kv.modRevision}); instances now:`, [...endpoints.values()]);
      resolve(text(ev.kv.key));
    });
    watch.on('put', (ev) => {
      endpoints.set(text(ev.kv.key), text(ev.kv.value));
      console.log(`client: ${text(ev.kv.key)} joined at ${text(ev.kv.value)}`);
    });
  });

  // api-2 "crashes": it stops renewing its lease
  console.log('api-2 stops renewing its lease; waiting for it to expire...');
  clearInterval(keepers[1]);
  const left = await gone;
  // a keep-alive still on its way when the interval was cleared may renew it once more
  const silentFor = Date.now() - renewedAt.get('api-2')!;
  console.log(`${left} removed ${silentFor} ms after its last keep-alive (TTL ${TTL_S} s)`);
  if (left !== 'services/api/api-2' || endpoints.size !== 2) throw new Error('unexpected membership');
  // the leader expires a lease no sooner than its TTL after the last renewal was sent
  if (silentFor < TTL_S * 1000) throw new Error(`the lease expired ${silentFor} ms after its last keep-alive, before its TTL`);
  for (const k of keepers) clearInterval(k);
  await watch.cancel();
  console.log('service discovery example: OK');
} finally {
  await cluster.close();
}
