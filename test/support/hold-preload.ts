import { installStepJournal } from '../../src/worker/preloaded-journal.js';
import { holdPointJournal } from './hold-point.js';

// Loaded before the built CLI (`node --import tsx --import <this file> bin/harbormaster.js worker ...`,
// as WorkerProcess does for `holdAt`): hands `harbormaster worker` the hold of ./hold-point.ts at the
// boundary HARBORMASTER_TEST_HOLD_AT names. This file is the only reader of that variable; the worker
// as installed (package, container image) holds no copy of it, so the variable does nothing there.

const spec = process.env.HARBORMASTER_TEST_HOLD_AT;
if (!spec) throw new Error('test/support/hold-preload.ts: HARBORMASTER_TEST_HOLD_AT is not set: name the hold point, <host|->:<step>:<begin|end>');
installStepJournal((logger) => holdPointJournal(spec, logger));
