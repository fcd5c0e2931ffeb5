/**
 * The storage contract (contract-suite.ts) on SQLite and on one Redis server; Sentinel and
 * Cluster run in contract-sentinel.test.ts and contract-cluster.test.ts.
 */
import { contractSuite, openStoreFailureSuite } from './contract-suite.js';

contractSuite('sqlite');
contractSuite('redis');
openStoreFailureSuite();
