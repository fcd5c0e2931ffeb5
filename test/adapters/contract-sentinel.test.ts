/** The storage contract (contract-suite.ts) on a Redis master reached through Sentinel. */
import { contractSuite } from './contract-suite.js';

contractSuite('redis-sentinel');
