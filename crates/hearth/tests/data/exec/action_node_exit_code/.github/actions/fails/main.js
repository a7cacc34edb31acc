const fs = require('fs');
console.log('js before failing');
fs.appendFileSync(process.env.GITHUB_OUTPUT, 'partial=yes\n');
process.exitCode = 1;
