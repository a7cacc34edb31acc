// Runs in a container whose image has no node: with the runner's, lent read-only.
const fs = require('fs');
const who = process.env.INPUT_WHO;
console.log(`hello ${who} from node ${process.versions.node.split('.')[0]}`);
console.log(`lent: ${__dirname.startsWith('/__w/') && fs.existsSync('/__e')}`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, `greeting=hello ${who}\n`);
fs.appendFileSync(process.env.GITHUB_STATE, `said=${who}\n`);
