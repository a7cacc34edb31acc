const fs = require('fs');
console.log(`js got ${process.env.INPUT_VALUE} on node ${process.versions.node.split('.')[0] > 0 ? 'yes' : 'no'}`);
fs.appendFileSync(process.env.GITHUB_STATE, `seen=${process.env.INPUT_VALUE}\n`);
