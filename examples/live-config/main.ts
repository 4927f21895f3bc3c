// Live configuration with watch.
//
//   npm run example:live-config
//
// An application reads its configuration (config/app/*) once and then
// follows a watch from the next revision. An operator changes two settings
// atomically in one txn: the application sees both in one watch response
// (etcd's atomic-per-revision guarantee), never a half-applied config.
import { text } from '../../src/index.js';
import { startLocalCluster } from '../lib/local-cluster.js';

const cluster = await startLocalCluster();
try {
  const leader = await cluster.leader();
  const app = cluster.nodes.find((n) => n !== leader)!;
  await leader.put('config/app/pool-size', '8');
  await leader.put('config/app/timeout-ms', '500');

  const config = new Map<string, string>();
  const initial = await app.range({ key: 'config/app/', prefix: true });
  for (const kv of initial.kvs) config.set(text(kv.key).slice('config/app/'.length), text(kv.value));
  console.log(`app starts with config at revision ${initial.header.revision}:`, Object.fromEntries(config));

  const watch = app.watch('config/app/', { prefix: true, startRevision: initial.header.revision + 1 });
  const updated = (async () => {
    for await (const res of watch) {
      for (const ev of res.events) config.set(text(ev.kv.key).slice('config/app/'.length), text(ev.kv.value));
      console.log(`app applies ${res.events.length} change(s) of revision ${res.header.revision}:`, Object.fromEntries(config));
      return res.events.length;
    }
    return 0;
  })();

  // the operator changes both settings in one transaction, only if nobody changed pool-size meanwhile
  const current = await leader.get('config/app/pool-size');
  const res = await leader.txn({
    compare: [{ key: 'config/app/pool-size', target: 'MOD', result: 'EQUAL', modRevision: current!.modRevision }],
    success: [
      { put: { key: 'config/app/pool-size', value: '16' } },
      { put: { key: 'config/app/timeout-ms', value: '250' } },
    ],
  });
  console.log(`operator txn succeeded=${res.succeeded} at revision ${res.header.revision}`);
  const n = await updated;
  if (n !== 2 || config.get('pool-size') !== '16' || config.get('timeout-ms') !== '250') throw new Error('config update was not atomic');
  await watch.cancel();
  console.log('live config example: OK');
} finally {
  await cluster.close();
}
