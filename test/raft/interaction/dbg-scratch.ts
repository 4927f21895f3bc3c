import { readFixture } from './datadriven.js';
import { InteractionEnv } from './interaction-env.js';
import { Raft } from '../../../src/raft/raft.js';
const orig = Raft.prototype.send;
let trace = false;
Raft.prototype.send = function (m) {
  if (trace && m.type === 'MsgApp' && m.to === '3') console.log('SEND', this.id, this.msgs.length); if (trace && m.type === 'MsgApp' && m.to === '3') console.log(new Error('send').stack?.split('\n').slice(1, 7).join('\n'));
  return orig.call(this, m);
};
const f = readFixture(process.argv[2]!);
const env = new InteractionEnv();
for (const c of f.cases) {
  trace = true;
  process.stdout.write(`>>> ${c.commands.join(' ; ')}\n` + env.handle(c.commands));
}
