// Saves or restores a cache with GitHub's client, as actions/cache does, and prints what
// happened as one JSON line: node cache.js save KEY PATH... | restore KEY RESTORE_KEYS PATH...
// (RESTORE_KEYS comma-separated, or "-" for none). The server comes from ACTIONS_CACHE_URL.
// CACHE_CLIENT=6 takes the newest client (@actions/cache 6, an ES module, installed as
// actions-cache-6) instead of 4.
const path = require('path');

async function client() {
  if (process.env.CACHE_CLIENT === '6') {
    const entry = path.join(process.env.NODE_PATH, 'actions-cache-6', 'lib', 'cache.js');
    return import(entry);
  }
  return require('@actions/cache');
}

async function main() {
  const cache = await client();
  const [mode, key, ...rest] = process.argv.slice(2);
  if (mode === 'save') {
    try {
      const id = await cache.saveCache(rest, key);
      console.log(JSON.stringify({ saved: id }));
    } catch (e) {
      console.log(JSON.stringify({ error: `${e.name}: ${e.message}` }));
    }
  } else if (mode === 'restore') {
    const [restoreKeys, ...paths] = rest;
    const keys = restoreKeys === '-' ? [] : restoreKeys.split(',');
    try {
      const hit = await cache.restoreCache(paths, key, keys);
      console.log(JSON.stringify({ restored: hit ?? null }));
    } catch (e) {
      console.log(JSON.stringify({ error: `${e.name}: ${e.message}` }));
    }
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
