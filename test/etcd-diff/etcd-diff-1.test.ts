// The differential test against etcd 3.4 (etcd-diff.ts), first half of its sequences.
import { diffTest } from './etcd-diff.js';

diffTest(0, 2);
