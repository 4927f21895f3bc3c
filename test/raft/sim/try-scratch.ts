import { runSimulation } from './raft-simulation.js';
import { SimFailure } from './sim-failure.js';
const n = Number(process.argv[2] ?? 3);
const count = Number(process.argv[3] ?? 200);
const steps = Number(process.argv[4] ?? 300);
const t0 = Date.now();
let fails = 0; let rounds = 0; const agg: Record<string, number> = {};
for (let seed = 1; seed <= count; seed++) {
  try {
    const r = runSimulation({ seed, nodes: n, steps });
    rounds += r.livenessRounds;
    for (const [k, v] of Object.entries(r)) if (typeof v === 'number' && !['seed','nodes','steps'].includes(k)) agg[k] = (agg[k] ?? 0) + v;
  } catch (e) {
    fails++;
    if (fails <= 5) console.log(e instanceof SimFailure ? e.message : e, (e as any).cause?.stack?.split('\n').slice(0,4).join('\n') ?? '');
  }
}
console.log(`${count} seeds, ${n} nodes, ${steps} steps: ${fails} failures, ${Date.now() - t0} ms`, agg);
