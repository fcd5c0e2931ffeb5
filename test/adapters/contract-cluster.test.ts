/** The storage contract (contract-suite.ts) on a three-master Redis Cluster. */
import { contractSuite } from './contract-suite.js';

contractSuite('redis-cluster');
