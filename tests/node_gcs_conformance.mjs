// The official Node.js GCS client (@google-cloud/storage) against `ringfetch serve`: whole and
// ranged downloads (the client validates whole downloads with the crc32c in x-goog-hash) and a
// prefix listing. Prints one line per check; node_gcs_conformance.sh compares them.
import {Storage} from '@google-cloud/storage';
import fs from 'node:fs';

const [root] = process.argv.slice(2);
const storage = new Storage({projectId: 'ringfetch-test'});
const bucket = storage.bucket('bkt');
const local = fs.readFileSync(`${root}/bkt/dir/a b#c.bin`);

const [whole] = await bucket.file('dir/a b#c.bin').download();
console.log(`whole ${whole.length} ${Buffer.compare(whole, local) === 0}`);
const [part] = await bucket.file('dir/a b#c.bin').download({start: 1000, end: 1999});
console.log(`range ${part.length} ${Buffer.compare(part, local.subarray(1000, 2000)) === 0}`);
const [files] = await bucket.getFiles({prefix: 'dir/'});
console.log(`list ${files.map((f) => f.name).sort().join('|')}`);
