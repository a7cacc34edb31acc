// Saves or restores a cache with GitHub's client, as actions/cache does, and prints what
// happened as one JSON line: node cache.js save KEY PATH... | restore KEY RESTORE_KEYS PATH...
// (RESTORE_KEYS comma-separated, or "-" for none). The server comes from ACTIONS_CACHE_URL.
const cache = require('@actions/cache');

async function main() {
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
