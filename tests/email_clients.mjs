// Checks HTML emails against the caniemail.com support data (bundled by doiuse-email).
// Usage: node tests/email_clients.mjs CLIENTS FILE.html... ; prints one JSON object:
// {"data": "<caniemail data date>", "results": {"FILE.html": {"errors": [...], "notes": [...]}}}
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { doIUseEmail } from 'doiuse-email';

// The data file is not exported by the package; read it beside the installed package.
const dataFile = new URL('../node_modules/doiuse-email/data/can-i-email.json', import.meta.url);
const data = JSON.parse(readFileSync(fileURLToPath(dataFile), 'utf8'));
const [clients, ...files] = process.argv.slice(2);
const emailClients = clients.split(',');
const results = {};
for (const file of files) {
  const result = doIUseEmail(readFileSync(file, 'utf8'), { emailClients });
  results[file] = { errors: result.errors ?? [], notes: result.notes ?? [] };
}
process.stdout.write(JSON.stringify({ data: data.last_update_date, results }));
