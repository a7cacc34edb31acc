// Uploads, lists, downloads or deletes an artifact of the current run with GitHub's client
// (@actions/artifact 2, artifacts v4), as actions/upload-artifact and download-artifact do, and
// prints what happened as one JSON line:
//   node artifact.js upload NAME ROOT FILE... | download NAME DIR | list | delete NAME
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
      const { downloadPath } = await client.downloadArtifact(artifact.id, { path: dir });
      console.log(JSON.stringify({ id: artifact.id, downloaded: downloadPath }));
    } else if (mode === 'list') {
      const { artifacts } = await client.listArtifacts();
      console.log(JSON.stringify({ names: artifacts.map((a) => a.name).sort() }));
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
