const fs = require('fs');
const file = process.env.GITHUB_WORKSPACE + '/posts.txt';
fs.appendFileSync(file, 'first ');
console.log('post order so far: ' + fs.readFileSync(file, 'utf8').trim());
