const fs = require('fs');
const ws = process.env.GITHUB_WORKSPACE;
const last = fs.existsSync(ws + '/last.txt') ? fs.readFileSync(ws + '/last.txt', 'utf8').trim() : 'none';
console.log(`post ran after the last step: ${last}`);
