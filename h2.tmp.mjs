import { hash, createHash } from 'node:crypto';
const parts = ['{"actor":"bench-service","audit":1,"chain":"vm-5da2bb379605","client":"bench-service","details":{"grantType":"client_credentials","jti":"fY4a-J96n1wpOwrK3G3_b8O82neoTGsYzCNjtJ-8MRG","scopes":["notes:read"]},"event":"token.issued"', ',"outcome":"success","prev":"54624771f42d0d487dc9c46c365c44a0444620be6c99e4b297b090af76fa281f","requestId":"34ca8bee-04c1-4af0-b94f-ca7b9aea2c75","resource":"https://notes.example.com/mcp","seq":18747,"source":"127.0.0.1","time":"2026-12-05T07:05:47.930Z"}'];
const N = 300000;
function bench(name, f) { let r; const t = process.hrtime.bigint(); for (let i = 0; i < N; i++) r = f(i); console.log(name, (Number(process.hrtime.bigint() - t) / N).toFixed(0)); }
const mk = (i) => 'daff2303fe8fd7f2212e0e259c74c0afebbe11a642a26f5a90e02331f1695c0' + (i & 7) + '\n' + parts[0] + parts[1];
for (let k = 0; k < 2; k++) {
bench('build only', (i) => mk(i).length);
bench('hash(str) hex', (i) => hash('sha256', mk(i), 'hex'));
bench('hash(latin1 buf) hex', (i) => hash('sha256', Buffer.from(mk(i), 'latin1'), 'hex'));
bench('hash(utf8 buf) hex', (i) => hash('sha256', Buffer.from(mk(i), 'utf8'), 'hex'));
bench('createHash latin1 update', (i) => createHash('sha256').update(mk(i), 'latin1').digest('hex'));
const buf = Buffer.allocUnsafe(4096);
bench('hash(write into pooled buf) hex', (i) => { const s = mk(i); const n = buf.write(s, 0, 'utf8'); return hash('sha256', buf.subarray(0, n), 'hex'); });
bench('hash(latin1 into pooled buf) hex', (i) => { const s = mk(i); const n = buf.latin1Write(s, 0); return hash('sha256', buf.subarray(0, n), 'hex'); });
}
