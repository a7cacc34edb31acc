const fs = require('fs');
const ws = process.env.GITHUB_WORKSPACE;
console.log(`main ran, pre file present=${fs.existsSync(ws + '/pre-ran.txt')}`);
