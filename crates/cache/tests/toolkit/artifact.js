// Uploads, lists, downloads or deletes an artifact of the current run with GitHub's client
// (@actions/artifact 2, artifacts v4), as actions/upload-artifact and download-artifact do, and
// prints what happened as one JSON line:
//   node artifact.js upload NAME ROOT FILE... | download NAME DIR | list | delete NAME
//   (list prints the names and digests, download whether the digest matched)
// The server and the run come from ACTIONS_RESULTS_URL and ACTIONS_RUNTIME_TOKEN.
const { DefaultArtifactClient } = require('@actions/artifact');

async function main() {
  const client = new DefaultArtifactClient();
  const [mode, ...rest] = process.argv.slice(2);
  try {
    if (mode === 'upload') {
      const [name, root, ...files] = rest;
      const { id, size } = await client.uploadArtifact(name, files, root);
      console.log(JSON.stringify({ id, size }));
    } else if (mode === 'download') {
      const [name, dir] = rest;
      const { artifact } = await client.getArtifact(name);
      // The digest the upload finalized with, checked against what comes down.
      const { downloadPath, digestMismatch } = await client.downloadArtifact(artifact.id, {
        path: dir,
        expectedHash: artifact.digest,
      });
      console.log(JSON.stringify({ id: artifact.id, downloaded: downloadPath, digestMismatch }));
    } else if (mode === 'list') {
      const { artifacts } = await client.listArtifacts();
      artifacts.sort((a, b) => a.name.localeCompare(b.name));
      const names = artifacts.map((a) => a.name);
      const digests = artifacts.map((a) => a.digest ?? null);
      console.log(JSON.stringify({ names, digests }));
    } else if (mode === 'delete') {
      const { id } = await client.deleteArtifact(rest[0]);
      console.log(JSON.stringify({ deleted: id }));
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
  } catch (e) {
    console.log(JSON.stringify({ error: `${e.name}: ${e.message}` }));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
